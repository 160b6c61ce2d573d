//! What the CLI prints: the API's JSON for scripts (`--output json`), short tables for people.

use clap::ValueEnum;
use serde_json::Value;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

fn cells(values: &[&Value]) -> Vec<String> {
    values.iter().map(|v| text(v).to_string()).collect()
}

/// Rows under a header, each column as wide as its widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// One line of an app's progress: its status and step, and what a human must do while it waits.
pub fn progress_line(app: &Value) -> String {
    let mut line = format!("{} {}", text(&app["status"]), app["step"].as_str().unwrap_or_default());
    let record = &app["certificate"]["validationRecord"];
    if app["step"] == "DNS_VALIDATION" && record.is_object() {
        let published = if record["published"] == Value::Bool(true) { " (published)" } else { "" };
        line.push_str(&format!(
            ": add {} {} {}{published}",
            text(&record["name"]),
            text(&record["type"]),
            text(&record["value"])
        ));
    }
    line.trim_end().to_string()
}

/// What a command answers with, for `Format::show`.
pub enum Shown {
    App(Value),
    Apps(Vec<Value>),
    Events(Vec<Value>),
    User(Value),
    Users(Vec<Value>),
    Roles(Vec<Value>),
    /// A user's roles (`{username, roles}`).
    UserRoles(Value),
    Preflight(Value),
    Raw(Value),
    /// Printed as it went (an import's lines).
    Nothing,
}

impl Format {
    pub fn show(self, shown: &Shown) {
        match shown {
            Shown::App(app) => self.app(app),
            Shown::Apps(apps) => self.apps(apps),
            Shown::Events(events) => self.events(events),
            Shown::User(user) if self == Format::Json => println!("{user}"),
            Shown::User(user) => self.users(std::slice::from_ref(user)),
            Shown::Users(users) => self.users(users),
            Shown::Roles(roles) => self.roles(roles),
            Shown::UserRoles(held) => self.user_roles(held),
            Shown::Preflight(report) => self.preflight(report),
            Shown::Raw(value) => self.raw(value),
            Shown::Nothing => {}
        }
    }

    fn raw(self, value: &Value) {
        match self {
            Format::Json => println!("{value}"),
            Format::Table => {
                for (key, value) in value.as_object().into_iter().flatten() {
                    println!("{key}: {}", value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string()));
                }
            }
        }
    }

    fn app(self, app: &Value) {
        match self {
            Format::Json => println!("{app}"),
            Format::Table => {
                println!("id: {}", text(&app["id"]));
                println!("name: {}", text(&app["name"]));
                println!("domain: {}", text(&app["domain"]));
                println!("status: {}", progress_line(app));
                if let Some(url) = app["url"].as_str() {
                    println!("url: {url}");
                }
                if let Some(health) = app["health"].as_object() {
                    println!("health: {} (checked {})", text(&health["status"]), text(&health["checkedAt"]));
                    for finding in health["findings"].as_array().into_iter().flatten() {
                        let fix = if finding["repairable"] == true { "repairable" } else { "not repairable" };
                        println!("  {} ({fix}): {}", text(&finding["code"]), text(&finding["detail"]));
                    }
                }
                if let Some(error) = app["error"].as_object() {
                    println!(
                        "error: {} at {}: {}",
                        text(&error["code"]),
                        text(&error["step"]),
                        text(&error["message"])
                    );
                }
            }
        }
    }

    /// A listing: the API's JSON array, or a table of one row per item.
    fn listing(self, items: &[Value], header: &[&str], row: impl Fn(&Value) -> Vec<String>) {
        match self {
            Format::Json => println!("{}", Value::Array(items.to_vec())),
            Format::Table => table(header, &items.iter().map(row).collect::<Vec<_>>()),
        }
    }

    fn apps(self, apps: &[Value]) {
        self.listing(apps, &["ID", "DOMAIN", "STATUS"], |a| {
            let status = format!("{} {}", text(&a["status"]), a["step"].as_str().unwrap_or_default());
            vec![text(&a["id"]).into(), text(&a["domain"]).into(), status.trim_end().into()]
        });
    }

    fn events(self, events: &[Value]) {
        self.listing(events, &["AT", "ACTOR", "ACTION", "DETAIL"], |e| {
            cells(&[&e["at"], &e["actor"], &e["action"], &e["detail"]])
        });
    }

    fn users(self, users: &[Value]) {
        self.listing(users, &["USERNAME", "EMAIL", "STATUS", "INVITATION", "EXPIRES"], |u| {
            let invitation = &u["invitation"];
            cells(&[&u["username"], &u["email"], &u["status"], &invitation["status"], &invitation["expiresAt"]])
        });
    }

    fn roles(self, roles: &[Value]) {
        self.listing(roles, &["ROLE", "DESCRIPTION", "CREATED"], |r| {
            cells(&[&r["name"], &r["description"], &r["createdAt"]])
        });
    }

    fn user_roles(self, held: &Value) {
        match self {
            Format::Json => println!("{held}"),
            Format::Table => {
                let roles: Vec<&str> =
                    held["roles"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                let roles = if roles.is_empty() { "(none)".to_string() } else { roles.join(", ") };
                println!("{}: {roles}", text(&held["username"]));
            }
        }
    }

    fn preflight(self, report: &Value) {
        match self {
            Format::Json => println!("{report}"),
            Format::Table => {
                let checks = report["checks"].as_array().cloned().unwrap_or_default();
                self.listing(&checks, &["CHECK", "STATUS", "DETAIL"], |c| {
                    cells(&[&c["check"], &c["status"], &c["detail"]])
                });
            }
        }
    }

    /// One line per invitation sent (an import's row, or a resend).
    pub fn result_line(self, result: &Value) {
        match self {
            Format::Json => println!("{result}"),
            Format::Table => {
                let detail = result["detail"].as_str().map(|d| format!(": {d}")).unwrap_or_default();
                println!("{} {}{detail}", text(&result["email"]), text(&result["outcome"]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_waiting_app_shows_the_record_to_add() {
        let app = json!({"status": "PROVISIONING", "step": "DNS_VALIDATION", "certificate": {"validationRecord":
            {"name": "_x.app.example.com.", "type": "CNAME", "value": "_y.acm-validations.aws.", "published": false}}});
        assert_eq!(
            progress_line(&app),
            "PROVISIONING DNS_VALIDATION: add _x.app.example.com. CNAME _y.acm-validations.aws."
        );
        assert_eq!(progress_line(&json!({"status": "ACTIVE"})), "ACTIVE");
    }
}
