//! Names Portcullis gives to what it creates.

/// A Cognito hosted-domain prefix that is unique per app: `pc-<name slug>-<last 10 hex digits of the app
/// id>`. The tail of a UUIDv7 is random (its head is the time, the same for apps made in the same
/// minute), and prefixes must be unique in the region across every account. Cognito allows lower-case
/// letters, digits and '-', up to 63 characters, and refuses prefixes that contain "aws", "amazon" or
/// "cognito".
pub fn pool_domain_prefix(app_name: &str, app_id: &str) -> String {
    let words: Vec<String> = app_name
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(|word| ["cognito", "amazon", "aws"].iter().fold(word.to_string(), |w, r| w.replace(r, "")))
        .filter(|word| !word.is_empty())
        .collect();
    let joined = words.join("-");
    let slug = joined.get(..40).unwrap_or(&joined).trim_end_matches('-');
    let hex: Vec<char> = app_id.chars().filter(char::is_ascii_hexdigit).collect();
    let suffix: String = hex[hex.len().saturating_sub(10)..].iter().collect();
    if slug.is_empty() { format!("pc-{suffix}") } else { format!("pc-{slug}-{suffix}") }
}

/// The name of the app's user pool: `portcullis-<name>-<app id>`. Cognito pools cannot be listed by tag,
/// so the id in the name is how a retried step or a teardown finds a pool whose creation was not recorded
/// (the tag `portcullis:app-id` then confirms it).
pub fn pool_name(app_name: &str, app_id: &str) -> String {
    format!("portcullis-{}-{app_id}", app_name.replace(' ', "-"))
}

/// True when the pool name is one [`pool_name`] gives to the app.
pub fn is_pool_name_of(pool_name: &str, app_id: &str) -> bool {
    pool_name.starts_with("portcullis-") && pool_name.ends_with(&format!("-{app_id}"))
}

/// The name of the app's client in its pool (clients have no tags; the pool is the app's alone). Cognito
/// allows 128 characters; a domain may have 253.
pub fn client_name(domain: &str) -> String {
    format!("portcullis-{domain}").chars().take(128).collect()
}

/// The certificate request's idempotency token: the app id without dashes (ACM allows 32 word
/// characters). ACM answers the same token, within an hour, with the same certificate.
pub fn certificate_token(app_id: &str) -> String {
    app_id.replace('-', "")
}

/// The invitation email's subject and body. Cognito requires `{username}` and `{####}` (the temporary
/// password) in the body; both are filled in by Cognito, so the password never passes through us.
pub fn invitation_message(app_name: &str, app_url: &str) -> (String, String) {
    let subject = format!("You are invited to {app_name}");
    let body = format!(
        "You have been invited to {app_name} at {app_url}<br><br>\
         Sign in with the user name {{username}} and the temporary password {{####}}. \
         You will be asked to choose a new password. The temporary password expires in 7 days; \
         ask an admin of {app_name} to resend the invitation if it has."
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_valid_for_cognito() {
        let p = pool_domain_prefix("My AWS Cognito Dashboard!!", "0190f3a2-7c1d-7000-8000-000000000000");
        assert_eq!(p, "pc-my-dashboard-0000000000");
        let long = pool_domain_prefix(&"x".repeat(100), "0190f3a2-7c1d-7000-8000-00000000abcd");
        assert!(long.len() <= 63);
        assert_eq!(pool_domain_prefix("---", "abcdef12"), "pc-abcdef12");
    }

    #[test]
    fn two_apps_of_one_name_made_at_once_get_different_prefixes() {
        let (a, b) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
        assert_eq!(a[..8], b[..8], "same time, same head");
        assert_ne!(pool_domain_prefix("Grafana", &a), pool_domain_prefix("Grafana", &b));
    }

    #[test]
    fn pool_names_carry_the_app_id_and_are_found_by_it() {
        let id = "0190f3a2-7c1d-7000-8000-000000000000";
        let name = pool_name("My App", id);
        assert_eq!(name, format!("portcullis-My-App-{id}"));
        assert!(is_pool_name_of(&name, id));
        assert!(!is_pool_name_of(&name, "0190f3a2-7c1d-7000-8000-000000000001"));
        assert!(!is_pool_name_of(&format!("other-{id}"), id));
        assert!(pool_name(&"x".repeat(64), id).len() <= 128, "Cognito's limit");
    }

    #[test]
    fn client_names_and_tokens_are_deterministic_and_within_limits() {
        assert_eq!(client_name("a.example.com"), "portcullis-a.example.com");
        assert_eq!(client_name(&"d".repeat(253)).len(), 128);
        let token = certificate_token("0190f3a2-7c1d-7000-8000-000000000000");
        assert_eq!(token.len(), 32);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn invitation_names_the_app_and_carries_placeholders() {
        let (subject, body) = invitation_message("Grafana", "https://grafana.example.com/");
        assert!(subject.contains("Grafana"));
        for needle in ["Grafana", "https://grafana.example.com/", "{username}", "{####}"] {
            assert!(body.contains(needle), "{needle}");
        }
    }
}
