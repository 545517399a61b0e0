//! What a command prints on stdout: the API's JSON with `--json`, else the
//! human form, the same way for every command family.

use serde_json::Value;

/// `value` as one line of JSON with `--json`, else what `human` makes of it.
pub(crate) fn shown(json: bool, value: &Value, human: impl FnOnce(&Value) -> String) -> String {
    if json {
        format!("{value}\n")
    } else {
        human(value)
    }
}

/// The answer to a delete, which has no body: `{"deleted": id}` with
/// `--json`, else a line.
pub(crate) fn deleted(json: bool, id: &str) -> String {
    shown(json, &serde_json::json!({ "deleted": id }), |_| {
        format!("deleted {id}\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_one_line_and_people_get_the_human_form() {
        let value = serde_json::json!({"id": "k1", "name": "ci"});
        assert_eq!(
            shown(true, &value, |_| unreachable!()),
            "{\"id\":\"k1\",\"name\":\"ci\"}\n"
        );
        assert_eq!(shown(false, &value, |v| format!("{}\n", v["name"])), "\"ci\"\n");
        assert_eq!(deleted(true, "k1"), "{\"deleted\":\"k1\"}\n");
        assert_eq!(deleted(false, "k1"), "deleted k1\n");
    }
}
