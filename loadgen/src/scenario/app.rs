//! How to drive a server's handlers: event names and argument shapes for join, leave and publish
//! (`--app-config FILE`, TOML). The default is Roomcast's built-in app, which the Node reference peer
//! (`benches/peers/node/server.js`) implements too.
//!
//! ```toml
//! # Every key is optional; these are the defaults (the built-in app).
//! join_event = "join"
//! join_args = '[$room]'
//! leave_event = "leave"
//! leave_args = '[$room]'
//! publish_event = "publish"
//! publish_args = '[{"to":$to,"except":$except,"event":$event,"data":$data}]'
//! delivery_event = "m"     # the event receivers get ($event above)
//! acks = true              # the handlers call their ack callback
//! ```
//!
//! `*_args` is a JSON array: the arguments of the emit. Before sending, these bare placeholders are
//! replaced by JSON values: `$room` (the room's name, a string), `$to` and `$except` (arrays of room
//! names), `$event` (`delivery_event`, a string) and `$data` (the payload string carrying the message
//! token). A handler with `socket.on("publish", (room, payload) => io.to(room).emit("m", payload))`
//! is described by `publish_args = '[$room, $data]'` (then `$room` is the first target room). The
//! receivers find the token anywhere in what they get, so the server may wrap `$data` as it likes.
//!
//! Without acks (`acks = false`), joins are taken as done 500 ms after the last one is sent, and
//! `fanout --window` (which frees a slot per ack) is refused.

use serde::Deserialize;

use crate::Error;

/// Placeholders a template may contain.
const PLACEHOLDERS: [&str; 5] = ["$room", "$to", "$except", "$event", "$data"];

/// The event names and argument templates of a server's app; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    /// Event that joins a room.
    pub join_event: String,
    /// Its arguments (JSON array template).
    pub join_args: String,
    /// Event that leaves a room.
    pub leave_event: String,
    /// Its arguments.
    pub leave_args: String,
    /// Event that publishes a message to rooms.
    pub publish_event: String,
    /// Its arguments.
    pub publish_args: String,
    /// Event name the receivers get (`$event`).
    pub delivery_event: String,
    /// Whether join, leave and publish are acknowledged.
    pub acks: bool,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            join_event: "join".into(),
            join_args: "[$room]".into(),
            leave_event: "leave".into(),
            leave_args: "[$room]".into(),
            publish_event: "publish".into(),
            publish_args: r#"[{"to":$to,"except":$except,"event":$event,"data":$data}]"#.into(),
            delivery_event: "m".into(),
            acks: true,
        }
    }
}

/// Values for one expansion of a template.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fill<'a> {
    /// Rooms targeted (`$to`; `$room` is the first).
    pub to: &'a [String],
    /// Rooms excluded (`$except`).
    pub except: &'a [String],
    /// The payload string, unquoted (`$data`); must need no JSON escaping (tokens and padding don't).
    pub data: &'a str,
}

impl AppConfig {
    /// Reads and checks a TOML file.
    pub fn load(path: &std::path::Path) -> Result<AppConfig, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("cannot read --app-config {}: {e}", path.display())))?;
        let config: AppConfig = toml::from_str(&text)
            .map_err(|e| Error::Usage(format!("bad --app-config {}: {}", path.display(), e.message())))?;
        config.check()?;
        Ok(config)
    }

    /// Checks that every template expands to a JSON array and every event name is non-empty.
    pub fn check(&self) -> Result<(), Error> {
        let rooms = ["r0".to_string(), "r1".to_string()];
        let fill = Fill { to: &rooms, except: &rooms, data: "rc1.0.0.0.x" };
        for (name, event, args) in [
            ("join", &self.join_event, &self.join_args),
            ("leave", &self.leave_event, &self.leave_args),
            ("publish", &self.publish_event, &self.publish_args),
        ] {
            if event.is_empty() {
                return Err(Error::Usage(format!("app config: {name}_event is empty")));
            }
            let expanded = self.expand(args, &fill);
            match serde_json::from_str::<serde_json::Value>(&expanded) {
                Ok(serde_json::Value::Array(_)) => {}
                _ => {
                    return Err(Error::Usage(format!(
                        "app config: {name}_args must be a JSON array once {} are filled in; got {expanded}",
                        PLACEHOLDERS.join(", ")
                    )))
                }
            }
        }
        if self.delivery_event.is_empty() {
            return Err(Error::Usage("app config: delivery_event is empty".into()));
        }
        Ok(())
    }

    /// Expands `template` and returns the JSON array's text. Cost: one pass, one allocation.
    pub fn expand(&self, template: &str, fill: &Fill<'_>) -> String {
        let mut out = String::with_capacity(template.len() + fill.data.len() + 32);
        let mut rest = template;
        while let Some(at) = rest.find('$') {
            let (before, from) = rest.split_at(at);
            out.push_str(before);
            let Some(name) = PLACEHOLDERS.iter().find(|p| from.starts_with(*p)) else {
                out.push('$');
                rest = from.get(1..).unwrap_or("");
                continue;
            };
            match *name {
                "$room" => push_json_str(&mut out, fill.to.first().map_or("", String::as_str)),
                "$to" => push_json_list(&mut out, fill.to),
                "$except" => push_json_list(&mut out, fill.except),
                "$event" => push_json_str(&mut out, &self.delivery_event),
                _ => push_json_str(&mut out, fill.data),
            }
            rest = from.get(name.len()..).unwrap_or("");
        }
        out.push_str(rest);
        out
    }

    /// Splits an expanded array into its elements' JSON texts (the emit's arguments).
    pub fn split_args(expanded: &str) -> Vec<String> {
        match serde_json::from_str::<Vec<Box<serde_json::value::RawValue>>>(expanded) {
            Ok(items) => items.into_iter().map(|v| v.get().to_string()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn push_json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::Value::from(s).to_string());
}

fn push_json_list(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, s);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_builtin_apps_publish_shape() {
        let app = AppConfig::default();
        app.check().unwrap();
        let to = ["r1".to_string(), "r2".to_string()];
        let except = ["r3".to_string()];
        let out = app.expand(&app.publish_args, &Fill { to: &to, except: &except, data: "rc1.1.2.3.x" });
        assert_eq!(out, r#"[{"to":["r1","r2"],"except":["r3"],"event":"m","data":"rc1.1.2.3.x"}]"#);
        assert_eq!(app.expand(&app.join_args, &Fill { to: &to, ..Fill::default() }), r#"["r1"]"#);
        assert_eq!(AppConfig::split_args(&out).len(), 1);
    }

    #[test]
    fn a_toml_file_overrides_some_keys_and_bad_templates_are_refused() {
        let app: AppConfig =
            toml::from_str("publish_event = \"say\"\npublish_args = '[$room, $data]'\nacks = false").unwrap();
        app.check().unwrap();
        let to = ["lobby".to_string()];
        let out = app.expand(&app.publish_args, &Fill { to: &to, except: &[], data: "t" });
        assert_eq!(AppConfig::split_args(&out), [r#""lobby""#, r#""t""#]);
        assert_eq!(app.join_event, "join");
        let bad: AppConfig = toml::from_str("join_args = '{\"room\":$room}'").unwrap();
        assert!(bad.check().unwrap_err().to_string().contains("join_args must be a JSON array"));
        assert!(toml::from_str::<AppConfig>("jion_event = \"x\"").is_err());
    }
}
