//! `portcullis`: the Portcullis API for people and scripts. Every POST carries an `Idempotency-Key`;
//! exit codes say what happened (see `--help`), and `--output json` prints the API's own JSON.

mod client;
mod output;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Value, json};

use client::{Api, Credentials, Failure, Outcome};
use output::{Format, Shown};

/// The Portcullis API from a terminal or a script.
#[derive(Parser)]
#[command(name = "portcullis", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    /// How answers are printed: a table for people, the API's JSON for scripts.
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 done; 1 a setting or file is missing or wrong; 2 bad usage; \
3 the API refused (a 4xx, its detail printed) or a preflight check failed; 4 the API could not be reached or failed (5xx); \
5 --wait saw the app end FAILED; 6 some rows of an import failed.";

#[derive(Args)]
struct Connection {
    /// The API's base URL, e.g. https://abc.execute-api.eu-west-1.amazonaws.com/prod.
    #[arg(long, env = "PORTCULLIS_API_URL", global = true)]
    api_url: Option<String>,
    /// A bearer token: an operator's ID token, or a service token's access token.
    #[arg(long, env = "PORTCULLIS_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// A service token's client id, exchanged with --client-secret at --token-url.
    #[arg(long, env = "PORTCULLIS_CLIENT_ID", global = true)]
    client_id: Option<String>,
    #[arg(long, env = "PORTCULLIS_CLIENT_SECRET", global = true, hide_env_values = true)]
    client_secret: Option<String>,
    /// The OAuth 2.0 token URL the service token was issued with.
    #[arg(long, env = "PORTCULLIS_TOKEN_URL", global = true)]
    token_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Protected apps.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// The users invited to an app.
    #[command(subcommand)]
    Users(UsersCommand),
    /// An app's roles: users are given them, and the app reads them from the signed-in user's access
    /// token (`cognito:groups`, docs/apps.md).
    #[command(subcommand)]
    Roles(RolesCommand),
    /// Prints a completion script for a shell.
    Completions { shell: clap_complete::Shell },
}

#[derive(Args)]
struct NewApp {
    #[arg(long)]
    name: String,
    /// The host name the app is served under.
    #[arg(long)]
    domain: String,
    /// An ALB target: the HTTPS listener (with --target-group-arn).
    #[arg(long, requires = "target_group_arn", conflicts_with = "environment_name")]
    listener_arn: Option<String>,
    #[arg(long, requires = "listener_arn")]
    target_group_arn: Option<String>,
    /// An Elastic Beanstalk target.
    #[arg(long)]
    environment_name: Option<String>,
    /// How long a sign-in lasts at the load balancer.
    #[arg(long)]
    session_timeout_seconds: Option<u64>,
    /// Sends each invitation again, automatically, the day before it expires (at most 3 times).
    #[arg(long)]
    auto_resend: bool,
    /// Invites only addresses at this domain or below it (repeat for more); without it, the tenant's
    /// default.
    #[arg(long = "allowed-email-domain", value_name = "DOMAIN")]
    allowed_email_domains: Vec<String>,
    /// Invites any address, whatever the tenant's default.
    #[arg(long, conflicts_with = "allowed_email_domains")]
    any_email_domain: bool,
    /// How many days an invited user's access lasts unless the invitation says otherwise.
    #[arg(long)]
    default_access_days: Option<u32>,
    /// A code from an authenticator app (TOTP) at sign-in as well as the password.
    #[arg(long, value_enum)]
    mfa: Option<MfaChoice>,
}

/// What `apps update` changes; only the options given.
#[derive(Args)]
struct AppChanges {
    #[arg(long)]
    name: Option<String>,
    /// How long a sign-in lasts at the load balancer (sessions started from then on).
    #[arg(long)]
    session_timeout_seconds: Option<u64>,
    /// Whether invitations are sent again, automatically, the day before they expire.
    #[arg(long, value_name = "true|false")]
    auto_resend: Option<bool>,
    /// Invites only addresses at this domain or below it (repeat for more); replaces the app's list.
    #[arg(long = "allowed-email-domain", value_name = "DOMAIN")]
    allowed_email_domains: Vec<String>,
    /// Invites any address.
    #[arg(long, conflicts_with = "allowed_email_domains")]
    any_email_domain: bool,
    /// How many days an invited user's access lasts unless the invitation says otherwise.
    #[arg(long, conflicts_with = "no_default_access_days")]
    default_access_days: Option<u32>,
    /// Access lasts until revoked unless the invitation names an end.
    #[arg(long)]
    no_default_access_days: bool,
    #[arg(long, value_enum)]
    mfa: Option<MfaChoice>,
}

impl AppChanges {
    fn body(&self) -> Value {
        let mut body = json!({});
        if let Some(name) = &self.name {
            body["name"] = json!(name);
        }
        if let Some(seconds) = self.session_timeout_seconds {
            body["sessionTimeoutSeconds"] = json!(seconds);
        }
        if let Some(flag) = self.auto_resend {
            body["autoResend"] = json!(flag);
        }
        if !self.allowed_email_domains.is_empty() || self.any_email_domain {
            body["allowedEmailDomains"] = json!(self.allowed_email_domains);
        }
        if let Some(days) = self.default_access_days {
            body["defaultAccessDays"] = json!(days);
        }
        if self.no_default_access_days {
            body["defaultAccessDays"] = Value::Null;
        }
        if let Some(mfa) = self.mfa {
            body["mfa"] = json!(mfa.as_api());
        }
        body
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum MfaChoice {
    Off,
    Optional,
    Required,
}

impl MfaChoice {
    fn as_api(self) -> &'static str {
        match self {
            MfaChoice::Off => "OFF",
            MfaChoice::Optional => "OPTIONAL",
            MfaChoice::Required => "REQUIRED",
        }
    }
}

impl NewApp {
    fn body(&self) -> Outcome<Value> {
        let target = match (&self.listener_arn, &self.target_group_arn, &self.environment_name) {
            (Some(listener), Some(group), None) => {
                json!({"type": "alb", "listenerArn": listener, "targetGroupArn": group})
            }
            (None, None, Some(environment)) => json!({"type": "elasticbeanstalk", "environmentName": environment}),
            _ => {
                return Err(Failure::Setup(
                    "name a target: --listener-arn with --target-group-arn, or --environment-name".into(),
                ));
            }
        };
        let mut body = json!({"name": self.name, "domain": self.domain, "target": target});
        if let Some(seconds) = self.session_timeout_seconds {
            body["sessionTimeoutSeconds"] = json!(seconds);
        }
        if self.auto_resend {
            body["autoResend"] = json!(true);
        }
        if !self.allowed_email_domains.is_empty() || self.any_email_domain {
            body["allowedEmailDomains"] = json!(self.allowed_email_domains);
        }
        if let Some(days) = self.default_access_days {
            body["defaultAccessDays"] = json!(days);
        }
        if let Some(mfa) = self.mfa {
            body["mfa"] = json!(mfa.as_api());
        }
        Ok(body)
    }
}

#[derive(Subcommand)]
enum AppsCommand {
    /// Protects an app (202: provisioning starts).
    Create {
        #[command(flatten)]
        app: NewApp,
        /// Waits until the app is ACTIVE or FAILED, with a line per step.
        #[arg(long)]
        wait: bool,
    },
    /// Checks an app before creating it; creates nothing.
    Preflight {
        #[command(flatten)]
        app: NewApp,
    },
    /// The tenant's apps.
    List,
    /// One app, with its health once the drift check has looked at it.
    Get { id: String },
    /// Puts back what Portcullis owns of an ACTIVE app that drifted (its rule, listener certificate, app
    /// client, pool domain); refuses, changing nothing, what it does not own.
    Repair { id: String },
    /// Changes an ACTIVE app's settings, keeping its users. A new name, MFA or session timeout is
    /// applied by the workflow (the app shows `settingsChange` until then).
    Update {
        id: String,
        #[command(flatten)]
        changes: AppChanges,
        /// Waits until the change is applied.
        #[arg(long)]
        wait: bool,
    },
    /// Removes the protection and everything Portcullis made for the app.
    Delete {
        id: String,
        /// Waits until the app is DELETED.
        #[arg(long)]
        wait: bool,
    },
    /// The app's history, newest first.
    Events { id: String },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Invites someone by email.
    Invite {
        app: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// When the user's access ends (RFC 3339, e.g. 2027-01-31T18:00:00Z); without it, the app's
        /// defaultAccessDays.
        #[arg(long)]
        expires_at: Option<String>,
        /// A role of the app to give the user (repeat for more).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// The app's users, with where each invitation stands.
    List {
        app: String,
        /// Only the users whose invitation is in this state.
        #[arg(long, value_enum)]
        invitation: Option<InvitationState>,
        /// Only the expired invitations (--invitation expired).
        #[arg(long, conflicts_with = "invitation")]
        expired: bool,
    },
    /// Sends the invitation again.
    Resend { app: String, username: String },
    /// Sends every expired invitation again, with a line per user.
    ResendExpired { app: String },
    /// Removes the user from the app's pool.
    Revoke { app: String, username: String },
    /// The roles a user holds.
    Roles { app: String, username: String },
    /// Sets exactly the roles a user holds: those named, and no others.
    SetRoles {
        app: String,
        username: String,
        /// A role of the app (repeat for more).
        #[arg(long = "role", value_name = "ROLE", required_unless_present = "none")]
        roles: Vec<String>,
        /// Takes every role from the user.
        #[arg(long, conflicts_with = "roles")]
        none: bool,
    },
    /// Invites everyone in a CSV file (email,name; a header row is optional), 100 per request, with a
    /// line per row.
    Import { app: String, file: PathBuf },
}

#[derive(Subcommand)]
enum RolesCommand {
    /// Adds a role to the app.
    Create {
        app: String,
        /// 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter.
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// The app's roles.
    List { app: String },
    /// Removes a role from the app and from every user who holds it.
    Delete { app: String, name: String },
}

#[derive(Clone, Copy, ValueEnum)]
enum InvitationState {
    Pending,
    Accepted,
    Expired,
}

impl InvitationState {
    fn as_query(self) -> &'static str {
        match self {
            InvitationState::Pending => "PENDING",
            InvitationState::Accepted => "ACCEPTED",
            InvitationState::Expired => "EXPIRED",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Wait {
    Active,
    /// ACTIVE with no change of settings under way.
    Settled,
    Deleted,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("portcullis: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Outcome {
    let format = cli.output;
    let api = match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "portcullis", &mut std::io::stdout());
            return Ok(());
        }
        _ => connect(cli.connection).await?,
    };
    let shown = match cli.command {
        Command::Completions { .. } => unreachable!("answered above"),
        Command::Apps(command) => apps(&api, command).await?,
        Command::Users(command) => users(&api, format, command).await?,
        Command::Roles(command) => roles(&api, command).await?,
    };
    format.show(&shown);
    // A preflight that found a failing check is a refusal a script can branch on.
    if let Shown::Preflight(report) = &shown
        && report["ok"] == json!(false)
    {
        return Err(Failure::ChecksFailed);
    }
    Ok(())
}

async fn connect(c: Connection) -> Outcome<Api> {
    let base = c.api_url.ok_or_else(|| Failure::Setup("set --api-url or PORTCULLIS_API_URL".into()))?;
    let credentials = match (c.token, c.client_id, c.client_secret, c.token_url) {
        (Some(token), _, _, _) => Credentials::Token(token),
        (None, Some(client_id), Some(client_secret), Some(token_url)) => {
            Credentials::Client { token_url, client_id, client_secret, scope: None }
        }
        _ => {
            return Err(Failure::Setup(
                "set a token (--token, PORTCULLIS_TOKEN) or service-token credentials (--client-id, \
                 --client-secret, --token-url)"
                    .into(),
            ));
        }
    };
    Api::connect(&base, credentials).await
}

fn segment(value: &str) -> String {
    // Ids and usernames are path segments: nothing in them may leave the segment.
    value.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@')).collect()
}

async fn apps(api: &Api, command: AppsCommand) -> Outcome<Shown> {
    match command {
        AppsCommand::Create { app, wait } => {
            let created = api.call(Method::POST, "/apps", Some(&app.body()?)).await?;
            let id = created["id"].as_str().unwrap_or_default().to_string();
            if !wait {
                return Ok(Shown::App(created));
            }
            let app = wait_for(api, &id, Wait::Active).await?;
            Ok(Shown::App(app))
        }
        AppsCommand::Preflight { app } => {
            let report = api.call(Method::POST, "/apps/preflight", Some(&app.body()?)).await?;
            Ok(Shown::Preflight(report))
        }
        AppsCommand::List => Ok(Shown::Apps(all_pages(api, "/apps").await?)),
        AppsCommand::Get { id } => Ok(Shown::App(api.get(&format!("/apps/{}", segment(&id))).await?)),
        AppsCommand::Repair { id } => {
            Ok(Shown::App(api.call(Method::POST, &format!("/apps/{}/repair", segment(&id)), None).await?))
        }
        AppsCommand::Update { id, changes, wait } => {
            let path = format!("/apps/{}", segment(&id));
            let updated = api.call(Method::PATCH, &path, Some(&changes.body())).await?;
            if !wait {
                return Ok(Shown::App(updated));
            }
            Ok(Shown::App(wait_for(api, &id, Wait::Settled).await?))
        }
        AppsCommand::Delete { id, wait } => {
            let deleting = api.call(Method::DELETE, &format!("/apps/{}", segment(&id)), None).await?;
            if !wait {
                return Ok(Shown::App(deleting));
            }
            Ok(Shown::App(wait_for(api, &id, Wait::Deleted).await?))
        }
        AppsCommand::Events { id } => {
            Ok(Shown::Events(all_pages(api, &format!("/apps/{}/events", segment(&id))).await?))
        }
    }
}

/// Every item of a listing, page after page.
async fn all_pages(api: &Api, path: &str) -> Outcome<Vec<Value>> {
    let mut items = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = match &next {
            None => api.get(path).await?,
            Some(token) => {
                let separator = if path.contains('?') { '&' } else { '?' };
                api.get(&format!("{path}{separator}nextToken={}", form_encode(token))).await?
            }
        };
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["nextToken"].as_str() {
            Some(token) if !token.is_empty() => next = Some(token.to_string()),
            _ => return Ok(items),
        }
    }
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls the app until it reaches `until` (or FAILED), with a progress line per step on a terminal
/// and one line per change otherwise.
async fn wait_for(api: &Api, id: &str, until: Wait) -> Outcome<Value> {
    let progress = indicatif::ProgressBar::new_spinner();
    if !std::io::stderr().is_terminal() {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    progress.enable_steady_tick(Duration::from_millis(120));
    let mut last = String::new();
    loop {
        let app = match api.get(&format!("/apps/{}", segment(id))).await {
            Err(Failure::Refused { status: 404, .. }) if matches!(until, Wait::Deleted) => {
                progress.finish_and_clear();
                return Ok(json!({"id": id, "status": "DELETED"}));
            }
            other => other?,
        };
        let status = app["status"].as_str().unwrap_or_default();
        let line = output::progress_line(&app);
        if line != last {
            if progress.is_hidden() {
                eprintln!("{line}");
            } else {
                progress.println(&line);
            }
            progress.set_message(line.clone());
            last = line;
        }
        match (status, until) {
            ("FAILED", _) => {
                progress.finish_and_clear();
                let reason = app["error"]["message"].as_str().unwrap_or("no reason given").to_string();
                return Err(Failure::AppFailed { id: id.to_string(), reason });
            }
            ("ACTIVE", Wait::Active) | ("DELETED", Wait::Deleted) => {
                progress.finish_and_clear();
                return Ok(app);
            }
            ("ACTIVE", Wait::Settled) if app.get("settingsChange").is_none() => {
                progress.finish_and_clear();
                return Ok(app);
            }
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

async fn users(api: &Api, format: Format, command: UsersCommand) -> Outcome<Shown> {
    match command {
        UsersCommand::Invite { app, email, name, expires_at, roles } => {
            let mut body = json!({"email": email});
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            if let Some(end) = expires_at {
                body["expiresAt"] = json!(end);
            }
            if !roles.is_empty() {
                body["roles"] = json!(roles);
            }
            Ok(Shown::User(api.call(Method::POST, &format!("/apps/{}/users", segment(&app)), Some(&body)).await?))
        }
        UsersCommand::List { app, invitation, expired } => {
            let mut path = format!("/apps/{}/users", segment(&app));
            if let Some(state) = invitation.or(expired.then_some(InvitationState::Expired)) {
                path = format!("{path}?invitation={}", state.as_query());
            }
            Ok(Shown::Users(all_pages(api, &path).await?))
        }
        UsersCommand::Resend { app, username } => {
            let path = format!("/apps/{}/users/{}/resend", segment(&app), segment(&username));
            Ok(Shown::Raw(api.call(Method::POST, &path, None).await?))
        }
        UsersCommand::Revoke { app, username } => {
            api.call(Method::DELETE, &format!("/apps/{}/users/{}", segment(&app), segment(&username)), None).await?;
            Ok(Shown::Raw(json!({"username": username, "revoked": true})))
        }
        UsersCommand::Roles { app, username } => {
            let path = format!("/apps/{}/users/{}/roles", segment(&app), segment(&username));
            Ok(Shown::UserRoles(api.get(&path).await?))
        }
        UsersCommand::SetRoles { app, username, roles, none: _ } => {
            // Without --role, clap has made sure --none was given: the user is left with no role.
            let path = format!("/apps/{}/users/{}/roles", segment(&app), segment(&username));
            Ok(Shown::UserRoles(api.call(Method::PUT, &path, Some(&json!({"roles": roles}))).await?))
        }
        UsersCommand::ResendExpired { app } => {
            let path = format!("/apps/{}/users/resend-expired", segment(&app));
            let answer = api.call(Method::POST, &path, None).await?;
            let results = answer["results"].as_array().cloned().unwrap_or_default();
            for result in &results {
                format.result_line(result);
            }
            all_done(&results, &["resent"]).map(|()| Shown::Nothing)
        }
        UsersCommand::Import { app, file } => import(api, format, &app, &file).await.map(|()| Shown::Nothing),
    }
}

async fn roles(api: &Api, command: RolesCommand) -> Outcome<Shown> {
    match command {
        RolesCommand::Create { app, name, description } => {
            let mut body = json!({"name": name});
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            let created = api.call(Method::POST, &format!("/apps/{}/roles", segment(&app)), Some(&body)).await?;
            Ok(Shown::Roles(vec![created]))
        }
        RolesCommand::List { app } => {
            Ok(Shown::Roles(all_pages(api, &format!("/apps/{}/roles", segment(&app))).await?))
        }
        RolesCommand::Delete { app, name } => {
            api.call(Method::DELETE, &format!("/apps/{}/roles/{}", segment(&app), segment(&name)), None).await?;
            Ok(Shown::Raw(json!({"role": name, "deleted": true})))
        }
    }
}

/// `RowsFailed` unless every result's outcome is one of `fine`.
fn all_done(results: &[Value], fine: &[&str]) -> Outcome {
    let failed = results.iter().filter(|r| !r["outcome"].as_str().is_some_and(|o| fine.contains(&o))).count();
    if failed > 0 {
        return Err(Failure::RowsFailed { failed, total: results.len() });
    }
    Ok(())
}

/// The API takes at most this many invitations per batch.
const BATCH: usize = 100;

/// Rows of `email,name` (a first row naming the columns is skipped).
fn read_rows(file: &Path) -> Outcome<Vec<Value>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(file)
        .map_err(|e| Failure::Setup(format!("{}: {e}", file.display())))?;
    let mut rows = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Failure::Setup(format!("{}: {e}", file.display())))?;
        let email = record.get(0).unwrap_or_default();
        if line == 0 && email.eq_ignore_ascii_case("email") {
            continue;
        }
        if email.is_empty() {
            continue;
        }
        let mut row = json!({"email": email});
        if let Some(name) = record.get(1).filter(|n| !n.is_empty()) {
            row["name"] = json!(name);
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(Failure::Setup(format!("{}: no rows of email,name", file.display())));
    }
    Ok(rows)
}

async fn import(api: &Api, format: Format, app: &str, file: &Path) -> Outcome {
    let rows = read_rows(file)?;
    let path = format!("/apps/{}/users/batch", segment(app));
    let mut results = Vec::new();
    for chunk in rows.chunks(BATCH) {
        let answer = api.call(Method::POST, &path, Some(&json!({"users": chunk}))).await?;
        let batch = answer["results"].as_array().cloned().unwrap_or_default();
        for result in &batch {
            format.result_line(result);
        }
        results.extend(batch);
    }
    all_done(&results, &["invited", "exists"])
}
