//! What a service's `/readyz` answers: every dependency check by name, and whether all
//! of them passed.

use serde_json::{Map, Value, json};

/// The `/readyz` body for these named checks, and whether the service is ready (every
/// check passed): `{"status": "ready" | "not ready", "checks": {name: "ok" | error}}`.
pub fn readiness(checks: &[(&str, &Result<(), String>)]) -> (bool, Value) {
    let ready = checks.iter().all(|(_, c)| c.is_ok());
    let named: Map<String, Value> = checks
        .iter()
        .map(|(name, c)| {
            let state = c.as_ref().map_or_else(|e| e.clone(), |()| "ok".to_owned());
            ((*name).to_owned(), Value::String(state))
        })
        .collect();
    let status = if ready { "ready" } else { "not ready" };
    (ready, json!({"status": status, "checks": named}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_passed() {
        let (ok, down) = (Ok(()), Err("redis: refused".to_owned()));
        let (ready, body) = readiness(&[("redis", &ok), ("kafka", &ok)]);
        assert!(ready);
        assert_eq!(
            body,
            json!({"status": "ready", "checks": {"redis": "ok", "kafka": "ok"}})
        );
        let (ready, body) = readiness(&[("redis", &down), ("kafka", &ok)]);
        assert!(!ready);
        assert_eq!(body["status"], "not ready");
        assert_eq!(body["checks"]["redis"], "redis: refused");
    }
}
