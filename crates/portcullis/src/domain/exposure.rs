//! Whether an app's target group can be reached without the app's own Cognito login, decided from a
//! snapshot of its load balancer's listeners and rules, and which changes close the routes Portcullis may
//! close itself.
//!
//! The login only protects what sits behind it: a target group is reachable by any route that forwards
//! to it, on any listener, and a listener evaluates its rules by priority, so a rule that matches the
//! app's host ahead of the app's rule keeps requests from ever reaching the login.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ListenerProtocol;

/// Every listener of a load balancer with its default actions and rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerView {
    pub listeners: Vec<ListenerView>,
}

/// One listener: where it listens, what it does when no rule matches, and its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerView {
    pub arn: String,
    pub port: u16,
    pub protocol: ListenerProtocol,
    pub default_actions: Vec<RuleAction>,
    pub rules: Vec<RuleView>,
}

/// A non-default rule; lower priority number = evaluated first (higher precedence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleView {
    pub arn: String,
    pub priority: u32,
    pub conditions: Vec<RuleCondition>,
    pub actions: Vec<RuleAction>,
}

/// What a rule requires of a request, as far as reaching the app is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleCondition {
    /// host-header values: patterns, case-insensitive, `*` = any run of characters (also none), `?` = exactly
    /// one character.
    HostHeader(Vec<String>),
    /// Any other condition (path, header, query, method, source IP): it narrows which requests match, so
    /// for a host it "may match".
    Other,
}

/// What a rule (or a listener's default) does with a request it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleAction {
    /// Forwards to these target group ARNs (a weighted forward lists several).
    Forward {
        target_groups: Vec<String>,
    },
    /// Signs the user in with this Cognito app client first.
    AuthenticateCognito {
        client_id: String,
    },
    /// Signs in through some OIDC provider (not the app's own login).
    AuthenticateOidc,
    Redirect,
    FixedResponse,
    /// An action type this analysis does not know: it forwards nowhere, and it is nobody's login.
    Other,
}

/// The app whose protection is being proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedApp<'a> {
    /// Lower-case FQDN.
    pub host: &'a str,
    pub target_group_arn: &'a str,
    /// The app's own Cognito app client.
    pub client_id: &'a str,
    /// The HTTPS listener the app's rule is on.
    pub listener_arn: &'a str,
    /// The app's rule (arn, priority), once it exists. None (e.g. a preflight before anything is
    /// created): every rule on the app's listener that matches the host counts as coming first.
    pub rule: Option<(&'a str, u32)>,
}

/// Where a route starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    DefaultAction,
    Rule { arn: String, priority: u32 },
}

/// Why the route breaks the promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExposureKind {
    /// It forwards to the app's target group without the app's own login.
    ForwardsWithoutLogin,
    /// It comes before the app's rule on the app's listener, matches the app's host, and forwards
    /// (anywhere) without the app's login: requests for the app's host never reach the login.
    ShadowsTheLogin,
}

/// One route around the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    pub listener_arn: String,
    pub port: u16,
    pub protocol: ListenerProtocol,
    pub entry: Entry,
    pub kind: ExposureKind,
}

/// What a listener does when no rule matches, as far as closing and restoring a route goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ListenerDefault {
    /// Forwards every request to one target group.
    #[serde(rename_all = "camelCase")]
    Forward { target_group_arn: String },
    /// Sends the client to the same URL over HTTPS (port 443), where the login is.
    RedirectToHttps,
    /// Answers a fixed 404.
    NotFound,
}

/// A default-action route Portcullis closes on a load balancer it may change (an Elastic Beanstalk
/// environment's own ALB): recorded with the app before the change, restored exactly on delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Closure {
    pub listener_arn: String,
    pub port: u16,
    /// What the listener did before: a plain forward to the app's target group.
    pub original: ListenerDefault,
    pub replacement: ListenerDefault,
}

impl fmt::Display for ListenerDefault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenerDefault::Forward { target_group_arn } => write!(f, "forward to {target_group_arn}"),
            ListenerDefault::RedirectToHttps => f.write_str("redirect to HTTPS"),
            ListenerDefault::NotFound => f.write_str("a fixed 404"),
        }
    }
}

impl fmt::Display for Closure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "listener {} (port {}): default {} became {}",
            self.listener_arn, self.port, self.original, self.replacement
        )
    }
}

/// ALB host-header matching: case-insensitive, `*` matches any run of characters (also none), `?`
/// exactly one. Anything else compares plainly, so an empty pattern matches only an empty host.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let host: Vec<char> = host.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Greedy glob with backtracking to the last `*`: linear in practice, never exponential.
    let (mut p, mut h) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while h < host.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, h));
                p += 1;
            }
            Some(&c) if c == '?' || c == host[h] => {
                p += 1;
                h += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry from there.
                Some((sp, sh)) => {
                    star = Some((sp, sh + 1));
                    p = sp + 1;
                    h = sh + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Every route around the app's login, in listener order, then the default action, then rules by
/// priority. Each route is reported once, as ForwardsWithoutLogin if it reaches the app's target group.
pub fn exposures(lb: &LoadBalancerView, app: &ProtectedApp) -> Vec<Exposure> {
    let mut found = Vec::new();
    for listener in &lb.listeners {
        let exposure = |entry, kind| Exposure {
            listener_arn: listener.arn.clone(),
            port: listener.port,
            protocol: listener.protocol.clone(),
            entry,
            kind,
        };
        if reaches_without_login(&listener.default_actions, app) {
            found.push(exposure(Entry::DefaultAction, ExposureKind::ForwardsWithoutLogin));
        }
        let on_apps_listener = listener.arn == app.listener_arn;
        for rule in by_priority(&listener.rules) {
            if app.rule.is_some_and(|(arn, _)| arn == rule.arn) {
                continue;
            }
            let entry = || Entry::Rule { arn: rule.arn.clone(), priority: rule.priority };
            if reaches_without_login(&rule.actions, app) {
                found.push(exposure(entry(), ExposureKind::ForwardsWithoutLogin));
            } else if on_apps_listener && shadows(rule, app) {
                found.push(exposure(entry(), ExposureKind::ShadowsTheLogin));
            }
        }
    }
    found
}

/// The changes that close the default-action routes: an HTTP listener redirects to HTTPS (where the
/// login is), any other answers a fixed 404. Only a default that is exactly a plain forward to the app's
/// target group is closed, because only that can be restored exactly; rules are never closed here, they
/// may be someone else's.
pub fn closures(lb: &LoadBalancerView, app: &ProtectedApp) -> Vec<Closure> {
    let plain_forward = RuleAction::Forward { target_groups: vec![app.target_group_arn.to_string()] };
    lb.listeners
        .iter()
        .filter(|listener| listener.default_actions == [plain_forward.clone()])
        .map(|listener| Closure {
            listener_arn: listener.arn.clone(),
            port: listener.port,
            original: ListenerDefault::Forward { target_group_arn: app.target_group_arn.to_string() },
            replacement: match listener.protocol {
                ListenerProtocol::Http => ListenerDefault::RedirectToHttps,
                _ => ListenerDefault::NotFound,
            },
        })
        .collect()
}

/// The exposures that remain once the closures are made.
pub fn left_open(exposures: &[Exposure], closures: &[Closure]) -> Vec<Exposure> {
    exposures
        .iter()
        .filter(|e| !(e.entry == Entry::DefaultAction && closures.iter().any(|c| c.listener_arn == e.listener_arn)))
        .cloned()
        .collect()
}

/// Why an app with these routes around its login is refused, in the provisioning and the preflight alike.
pub fn exposed(open: &[Exposure]) -> String {
    format!("the app's target group can be reached without its login: {}", describe(open))
}

/// The Display of each exposure, joined with "; ".
pub fn describe(exposures: &[Exposure]) -> String {
    exposures.iter().map(Exposure::to_string).collect::<Vec<_>>().join("; ")
}

impl fmt::Display for Exposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listener {} ({}:{}) ", self.listener_arn, self.protocol, self.port)?;
        match &self.entry {
            Entry::DefaultAction => f.write_str("default action")?,
            Entry::Rule { arn, priority } => write!(f, "rule {arn} (priority {priority})")?,
        }
        match (&self.kind, &self.entry) {
            (ExposureKind::ForwardsWithoutLogin, Entry::DefaultAction) => {
                f.write_str(" forwards to the app's target group without its login; ")?;
                // The same advice as `closures`: only plain HTTP can be sent on to the login.
                match self.protocol {
                    ListenerProtocol::Http => f.write_str("make it redirect to HTTPS or answer a fixed response"),
                    _ => f.write_str("make it answer a fixed response"),
                }
            }
            (ExposureKind::ForwardsWithoutLogin, Entry::Rule { .. }) => f.write_str(
                " forwards to the app's target group without its login; remove it or put it behind the app's login",
            ),
            (ExposureKind::ShadowsTheLogin, _) => f.write_str(
                " matches the app's host before the app's rule and forwards without its login; \
                 narrow its host condition or give it a lower precedence (higher priority number)",
            ),
        }
    }
}

/// Forwards to the app's target group (in any forward, weighted or not) without the app's own login.
/// Another client's or an OIDC login does not count: those are other people's logins.
fn reaches_without_login(actions: &[RuleAction], app: &ProtectedApp) -> bool {
    let forwards_to_app = actions.iter().any(|action| match action {
        RuleAction::Forward { target_groups } => target_groups.iter().any(|tg| tg == app.target_group_arn),
        _ => false,
    });
    forwards_to_app && !has_apps_login(actions, app)
}

/// A rule ahead of the app's rule that may take the app's host and send it to a backend without the login.
fn shadows(rule: &RuleView, app: &ProtectedApp) -> bool {
    let ahead = app.rule.is_none_or(|(_, priority)| rule.priority < priority);
    let forwards = rule.actions.iter().any(|action| matches!(action, RuleAction::Forward { .. }));
    ahead && forwards && !has_apps_login(&rule.actions, app) && may_match_host(&rule.conditions, app.host)
}

fn has_apps_login(actions: &[RuleAction], app: &ProtectedApp) -> bool {
    actions.iter().any(|action| match action {
        RuleAction::AuthenticateCognito { client_id } => client_id == app.client_id,
        _ => false,
    })
}

/// Every host-header condition must match (any of its values is enough); other conditions narrow by
/// something other than the host, so they never rule the host out. A host-header condition with no
/// values (the ALB refuses one) is taken as matching: when unsure, the check assumes the route is open.
fn may_match_host(conditions: &[RuleCondition], host: &str) -> bool {
    conditions.iter().all(|condition| match condition {
        RuleCondition::HostHeader(values) => values.is_empty() || values.iter().any(|p| host_matches(p, host)),
        RuleCondition::Other => true,
    })
}

/// Rules in evaluation order; the snapshot may list them in any order.
fn by_priority(rules: &[RuleView]) -> Vec<&RuleView> {
    let mut sorted: Vec<&RuleView> = rules.iter().collect();
    sorted.sort_by_key(|rule| rule.priority);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "grafana.demo.test";
    const TG: &str = "arn:tg/app";
    const OTHER_TG: &str = "arn:tg/other";
    const CLIENT: &str = "app-client";
    const HTTP: &str = "arn:listener/http";
    const HTTPS: &str = "arn:listener/https";
    const APP_RULE: &str = "arn:rule/app";

    fn app(rule: Option<(&'static str, u32)>) -> ProtectedApp<'static> {
        ProtectedApp { host: HOST, target_group_arn: TG, client_id: CLIENT, listener_arn: HTTPS, rule }
    }

    fn forward(tg: &str) -> RuleAction {
        RuleAction::Forward { target_groups: vec![tg.into()] }
    }

    fn login(client: &str) -> RuleAction {
        RuleAction::AuthenticateCognito { client_id: client.into() }
    }

    fn hosts(patterns: &[&str]) -> RuleCondition {
        RuleCondition::HostHeader(patterns.iter().map(|p| p.to_string()).collect())
    }

    fn rule(arn: &str, priority: u32, conditions: Vec<RuleCondition>, actions: Vec<RuleAction>) -> RuleView {
        RuleView { arn: arn.into(), priority, conditions, actions }
    }

    fn app_rule(priority: u32) -> RuleView {
        rule(APP_RULE, priority, vec![hosts(&[HOST])], vec![login(CLIENT), forward(TG)])
    }

    fn listener(
        arn: &str,
        port: u16,
        protocol: ListenerProtocol,
        default: RuleAction,
        rules: Vec<RuleView>,
    ) -> ListenerView {
        ListenerView { arn: arn.into(), port, protocol, default_actions: vec![default], rules }
    }

    /// A shared ALB: one HTTPS listener whose default answers 404, with `rules` and the app's rule at 5.
    fn shared(rules: Vec<RuleView>) -> LoadBalancerView {
        let mut all = vec![app_rule(5)];
        all.extend(rules);
        LoadBalancerView {
            listeners: vec![listener(HTTPS, 443, ListenerProtocol::Https, RuleAction::FixedResponse, all)],
        }
    }

    /// An Elastic Beanstalk environment's ALB as it comes: both listeners forward to the app by default.
    fn beanstalk(http_default: RuleAction, https_default: RuleAction) -> LoadBalancerView {
        LoadBalancerView {
            listeners: vec![
                listener(HTTP, 80, ListenerProtocol::Http, http_default, vec![]),
                listener(HTTPS, 443, ListenerProtocol::Https, https_default, vec![app_rule(1)]),
            ],
        }
    }

    fn kinds(found: &[Exposure]) -> Vec<(&str, &Entry, &ExposureKind)> {
        found.iter().map(|e| (e.listener_arn.as_str(), &e.entry, &e.kind)).collect()
    }

    fn at(arn: &str, priority: u32) -> Entry {
        Entry::Rule { arn: arn.into(), priority }
    }

    #[test]
    fn host_matching_follows_the_alb() {
        assert!(host_matches("", ""));
        assert!(!host_matches("", HOST));
        assert!(host_matches("*", HOST));
        assert!(host_matches("*", ""));
        assert!(host_matches("a*b", "ab"));
        assert!(host_matches("a*b", "axxb"));
        assert!(!host_matches("a*b", "axxbc"));
        assert!(host_matches("a*b*c", "abbbc"));
        assert!(host_matches("??", "ab"));
        assert!(!host_matches("??", "a"));
        assert!(!host_matches("??", "abc"));
        assert!(host_matches("GraFana.Demo.TEST", HOST));
        assert!(host_matches("*.DEMO.test", HOST));
        assert!(!host_matches("*.demo.test", "demo.test"));
        assert!(!host_matches("grafana.demo.test.", HOST));
        assert!(!host_matches("grafana.demo.test:443", HOST));
    }

    #[test]
    fn a_beanstalk_alb_as_it_comes_is_open_on_both_listeners_until_closed() {
        let lb = beanstalk(forward(TG), forward(TG));
        let found = exposures(&lb, &app(Some((APP_RULE, 1))));
        assert_eq!(
            kinds(&found),
            vec![
                (HTTP, &Entry::DefaultAction, &ExposureKind::ForwardsWithoutLogin),
                (HTTPS, &Entry::DefaultAction, &ExposureKind::ForwardsWithoutLogin),
            ]
        );
        let closing = closures(&lb, &app(Some((APP_RULE, 1))));
        let restore = ListenerDefault::Forward { target_group_arn: TG.into() };
        assert_eq!(
            closing,
            vec![
                Closure {
                    listener_arn: HTTP.into(),
                    port: 80,
                    original: restore.clone(),
                    replacement: ListenerDefault::RedirectToHttps
                },
                Closure {
                    listener_arn: HTTPS.into(),
                    port: 443,
                    original: restore,
                    replacement: ListenerDefault::NotFound
                },
            ]
        );
        assert_eq!(left_open(&found, &closing), vec![]);

        let closed = beanstalk(RuleAction::Redirect, RuleAction::FixedResponse);
        assert_eq!(exposures(&closed, &app(Some((APP_RULE, 1)))), vec![]);
        assert_eq!(closures(&closed, &app(Some((APP_RULE, 1)))), vec![]);
    }

    #[test]
    fn a_shared_alb_forwarding_to_the_app_by_default_is_open() {
        let mut lb = shared(vec![]);
        lb.listeners[0].default_actions = vec![RuleAction::Forward { target_groups: vec![OTHER_TG.into(), TG.into()] }];
        let found = exposures(&lb, &app(Some((APP_RULE, 5))));
        assert_eq!(kinds(&found), vec![(HTTPS, &Entry::DefaultAction, &ExposureKind::ForwardsWithoutLogin)]);
        // A weighted forward cannot be put back exactly: it is not closed, so it stays open.
        assert_eq!(closures(&lb, &app(Some((APP_RULE, 5)))), vec![]);
        assert_eq!(left_open(&found, &[]), found);
    }

    #[test]
    fn the_apps_own_rule_and_a_default_behind_its_login_are_not_exposures() {
        let mut lb = shared(vec![]);
        lb.listeners[0].default_actions = vec![login(CLIENT), forward(TG)];
        assert_eq!(exposures(&lb, &app(Some((APP_RULE, 5)))), vec![]);
        assert_eq!(closures(&lb, &app(Some((APP_RULE, 5)))), vec![]);
    }

    #[test]
    fn a_wildcard_rule_ahead_of_the_app_shadows_it_but_not_behind() {
        let wildcard =
            |priority| rule("arn:rule/wild", priority, vec![hosts(&["*.demo.test"])], vec![forward(OTHER_TG)]);
        let found = exposures(&shared(vec![wildcard(1)]), &app(Some((APP_RULE, 5))));
        assert_eq!(kinds(&found), vec![(HTTPS, &at("arn:rule/wild", 1), &ExposureKind::ShadowsTheLogin)]);
        assert_eq!(exposures(&shared(vec![wildcard(9)]), &app(Some((APP_RULE, 5)))), vec![]);
        // A shadowing rule may be someone else's: only default actions get a closure.
        assert_eq!(closures(&shared(vec![wildcard(1)]), &app(Some((APP_RULE, 5)))), vec![]);
        let mut beanstalk_with_wildcard = beanstalk(forward(TG), forward(TG));
        beanstalk_with_wildcard.listeners[1].rules.push(wildcard(0));
        let app = app(Some((APP_RULE, 1)));
        let open = exposures(&beanstalk_with_wildcard, &app);
        let left = left_open(&open, &closures(&beanstalk_with_wildcard, &app));
        assert_eq!(kinds(&left), vec![(HTTPS, &at("arn:rule/wild", 0), &ExposureKind::ShadowsTheLogin)]);
    }

    #[test]
    fn host_conditions_match_regardless_of_case_and_with_single_character_wildcards() {
        let upper = rule("arn:rule/upper", 1, vec![hosts(&["*.DEMO.test"])], vec![forward(OTHER_TG)]);
        let single = rule("arn:rule/single", 2, vec![hosts(&["grafan?.demo.test"])], vec![forward(OTHER_TG)]);
        let too_short = rule("arn:rule/short", 3, vec![hosts(&["grafana?.demo.test"])], vec![forward(OTHER_TG)]);
        let found = exposures(&shared(vec![upper, single, too_short]), &app(Some((APP_RULE, 5))));
        assert_eq!(
            kinds(&found),
            vec![
                (HTTPS, &at("arn:rule/upper", 1), &ExposureKind::ShadowsTheLogin),
                (HTTPS, &at("arn:rule/single", 2), &ExposureKind::ShadowsTheLogin),
            ]
        );
    }

    #[test]
    fn a_rule_without_a_host_condition_matches_every_host() {
        let path_only = rule("arn:rule/path", 2, vec![RuleCondition::Other], vec![forward(OTHER_TG)]);
        let found = exposures(&shared(vec![path_only]), &app(Some((APP_RULE, 5))));
        assert_eq!(kinds(&found), vec![(HTTPS, &at("arn:rule/path", 2), &ExposureKind::ShadowsTheLogin)]);
    }

    #[test]
    fn every_host_condition_of_a_rule_must_match() {
        let both = rule(
            "arn:rule/both",
            1,
            vec![hosts(&["other.test", HOST]), hosts(&["*.demo.test"])],
            vec![forward(OTHER_TG)],
        );
        let one_misses =
            rule("arn:rule/miss", 2, vec![hosts(&[HOST]), hosts(&["*.other.test"])], vec![forward(OTHER_TG)]);
        let found = exposures(&shared(vec![both, one_misses]), &app(Some((APP_RULE, 5))));
        assert_eq!(kinds(&found), vec![(HTTPS, &at("arn:rule/both", 1), &ExposureKind::ShadowsTheLogin)]);
    }

    #[test]
    fn another_clients_login_is_not_the_apps_login() {
        let others =
            rule("arn:rule/others", 7, vec![hosts(&["admin.demo.test"])], vec![login("other-client"), forward(TG)]);
        let oidc =
            rule("arn:rule/oidc", 8, vec![hosts(&["sso.demo.test"])], vec![RuleAction::AuthenticateOidc, forward(TG)]);
        let found = exposures(&shared(vec![others, oidc]), &app(Some((APP_RULE, 5))));
        assert_eq!(
            kinds(&found),
            vec![
                (HTTPS, &at("arn:rule/others", 7), &ExposureKind::ForwardsWithoutLogin),
                (HTTPS, &at("arn:rule/oidc", 8), &ExposureKind::ForwardsWithoutLogin),
            ]
        );
    }

    #[test]
    fn a_rule_that_reaches_the_app_ahead_of_its_rule_is_reported_once() {
        let ahead = rule("arn:rule/ahead", 1, vec![hosts(&[HOST])], vec![forward(TG)]);
        let found = exposures(&shared(vec![ahead]), &app(Some((APP_RULE, 5))));
        assert_eq!(kinds(&found), vec![(HTTPS, &at("arn:rule/ahead", 1), &ExposureKind::ForwardsWithoutLogin)]);
    }

    #[test]
    fn no_backend_reached_is_no_exposure() {
        let fixed = rule("arn:rule/fixed", 1, vec![hosts(&[HOST])], vec![RuleAction::FixedResponse]);
        let redirect = rule("arn:rule/redirect", 2, vec![], vec![RuleAction::Redirect]);
        let behind_login =
            rule("arn:rule/login", 3, vec![hosts(&["*.demo.test"])], vec![login(CLIENT), forward(OTHER_TG)]);
        assert_eq!(exposures(&shared(vec![fixed, redirect, behind_login]), &app(Some((APP_RULE, 5)))), vec![]);
    }

    #[test]
    fn before_the_app_has_a_rule_every_matching_forward_shadows_it() {
        let late = rule("arn:rule/late", 40_000, vec![hosts(&["*.demo.test"])], vec![forward(OTHER_TG)]);
        let early = rule("arn:rule/early", 3, vec![RuleCondition::Other], vec![forward(OTHER_TG)]);
        let elsewhere = rule("arn:rule/elsewhere", 1, vec![hosts(&["*.other.test"])], vec![forward(OTHER_TG)]);
        let lb = LoadBalancerView {
            listeners: vec![listener(
                HTTPS,
                443,
                ListenerProtocol::Https,
                RuleAction::FixedResponse,
                vec![late, early, elsewhere],
            )],
        };
        let found = exposures(&lb, &app(None));
        assert_eq!(
            kinds(&found),
            vec![
                (HTTPS, &at("arn:rule/early", 3), &ExposureKind::ShadowsTheLogin),
                (HTTPS, &at("arn:rule/late", 40_000), &ExposureKind::ShadowsTheLogin),
            ]
        );
    }

    #[test]
    fn only_the_apps_listener_can_shadow_but_every_listener_can_reach_the_app() {
        let catch_all = rule("arn:rule/catch-all", 1, vec![], vec![forward(OTHER_TG)]);
        let to_app = rule("arn:rule/to-app", 2, vec![hosts(&["x.test"])], vec![forward(TG)]);
        let lb = LoadBalancerView {
            listeners: vec![
                listener(
                    "arn:listener/8443",
                    8443,
                    ListenerProtocol::Https,
                    RuleAction::FixedResponse,
                    vec![to_app, catch_all],
                ),
                listener(HTTPS, 443, ListenerProtocol::Https, RuleAction::FixedResponse, vec![app_rule(5)]),
            ],
        };
        let found = exposures(&lb, &app(Some((APP_RULE, 5))));
        assert_eq!(
            kinds(&found),
            vec![("arn:listener/8443", &at("arn:rule/to-app", 2), &ExposureKind::ForwardsWithoutLogin)]
        );
    }

    #[test]
    fn each_sentence_names_the_listener_the_rule_and_the_fix() {
        let exposure =
            |port, protocol, entry, kind| Exposure { listener_arn: "arn:l".into(), port, protocol, entry, kind };
        let http_default =
            exposure(80, ListenerProtocol::Http, Entry::DefaultAction, ExposureKind::ForwardsWithoutLogin);
        assert_eq!(
            http_default.to_string(),
            "listener arn:l (HTTP:80) default action forwards to the app's target group without its login; \
             make it redirect to HTTPS or answer a fixed response"
        );
        let https_default =
            exposure(443, ListenerProtocol::Https, Entry::DefaultAction, ExposureKind::ForwardsWithoutLogin);
        assert!(https_default.to_string().starts_with("listener arn:l (HTTPS:443) default action"));
        assert!(https_default.to_string().ends_with("make it answer a fixed response"));

        let forwards = exposure(443, ListenerProtocol::Https, at("arn:r", 5), ExposureKind::ForwardsWithoutLogin);
        assert_eq!(
            forwards.to_string(),
            "listener arn:l (HTTPS:443) rule arn:r (priority 5) forwards to the app's target group without its login; \
             remove it or put it behind the app's login"
        );
        let shadows = exposure(443, ListenerProtocol::Https, at("arn:s", 2), ExposureKind::ShadowsTheLogin);
        let text = shadows.to_string();
        for needle in
            ["listener arn:l", "(HTTPS:443)", "rule arn:s (priority 2)", "before the app's rule", "priority number"]
        {
            assert!(text.contains(needle), "{needle}: {text}");
        }

        let other = exposure(
            8080,
            ListenerProtocol::Other("TCP".into()),
            Entry::DefaultAction,
            ExposureKind::ForwardsWithoutLogin,
        );
        assert!(other.to_string().starts_with("listener arn:l (TCP:8080) default action"));

        assert_eq!(describe(&[]), "");
        assert_eq!(describe(&[http_default.clone(), forwards.clone()]), format!("{http_default}; {forwards}"));
    }
}
