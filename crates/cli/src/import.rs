//! `keymint keys import`: a JSON Lines file sent 1 000 lines at a time, each
//! line's result reported by line number, never a key.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::http::Client;
use crate::table::text;
use crate::Failure;

/// Lines sent in one import request: the API's most.
pub(crate) const IMPORT_BATCH: usize = 1000;

/// What became of one line of an import file.
pub(crate) enum LineResult {
    Imported(String),
    Failed(Vec<Value>),
}

/// A line's number and its item, or why it is none.
type ReadLine = (usize, Result<Value, String>);

/// Reads an import file's lines: each non-blank line is a JSON object, or a
/// failure that never repeats the line (it may hold a private key).
pub(crate) fn import_lines(reader: impl std::io::BufRead) -> Result<Vec<ReadLine>, Failure> {
    let mut lines = Vec::new();
    for (number, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| Failure {
            message: format!("cannot read the import file: {e}"),
            code: 2,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = match serde_json::from_str::<Value>(&line) {
            Ok(item @ Value::Object(_)) => Ok(item),
            Ok(_) => Err("not a JSON object".to_owned()),
            Err(e) => Err(format!("not JSON (column {})", e.column())),
        };
        lines.push((number + 1, parsed));
    }
    Ok(lines)
}

/// One line's failure in a word: each reason's field and message.
pub(crate) fn failure_text(detail: &[Value]) -> String {
    detail
        .iter()
        .map(|reason| {
            let field: Vec<String> = reason["loc"]
                .as_array()
                .map(|loc| loc.iter().skip(3).map(text).collect())
                .unwrap_or_default();
            if field.is_empty() {
                text(&reason["msg"])
            } else {
                format!("{}: {}", field.join("."), text(&reason["msg"]))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub(crate) async fn import_file(client: &Client, file: &std::path::Path, json: bool) -> Result<String, Failure> {
    let lines = if file.as_os_str() == "-" {
        import_lines(std::io::stdin().lock())?
    } else {
        let opened = std::fs::File::open(file).map_err(|e| Failure {
            message: format!("cannot open {}: {e}", file.display()),
            code: 2,
        })?;
        import_lines(std::io::BufReader::new(opened))?
    };
    let mut results: Vec<(usize, LineResult)> = Vec::with_capacity(lines.len());
    let mut batch: Vec<(usize, Value)> = Vec::new();
    let mut lines = lines.into_iter().peekable();
    while let Some((number, parsed)) = lines.next() {
        match parsed {
            Ok(item) => batch.push((number, item)),
            Err(why) => results.push((number, LineResult::Failed(vec![json!({"loc": [], "msg": why})]))),
        }
        if batch.len() == IMPORT_BATCH || (lines.peek().is_none() && !batch.is_empty()) {
            let numbers: Vec<usize> = batch.iter().map(|(number, _)| *number).collect();
            let items: Vec<Value> = batch.drain(..).map(|(_, item)| item).collect();
            let answer = client
                .call(
                    reqwest::Method::POST,
                    "/api/v2/api-keys/import",
                    Some(json!({"keys": items})),
                    true,
                )
                .await?;
            for imported in answer["imported"].as_array().map(Vec::as_slice).unwrap_or_default() {
                if let Some(&number) = imported["index"]
                    .as_u64()
                    .and_then(|i| numbers.get(usize::try_from(i).ok()?))
                {
                    results.push((number, LineResult::Imported(text(&imported["id"]))));
                }
            }
            for failed in answer["failed"].as_array().map(Vec::as_slice).unwrap_or_default() {
                if let Some(&number) = failed["index"]
                    .as_u64()
                    .and_then(|i| numbers.get(usize::try_from(i).ok()?))
                {
                    let detail = failed["detail"].as_array().cloned().unwrap_or_default();
                    results.push((number, LineResult::Failed(detail)));
                }
            }
        }
    }
    results.sort_by_key(|(number, _)| *number);
    let imported = results
        .iter()
        .filter(|(_, r)| matches!(r, LineResult::Imported(_)))
        .count();
    let failed = results.len() - imported;
    let mut out = String::new();
    for (number, result) in &results {
        let _ = match (result, json) {
            (LineResult::Imported(id), true) => writeln!(out, "{}", json!({"line": number, "id": id})),
            (LineResult::Failed(detail), true) => writeln!(out, "{}", json!({"line": number, "detail": detail})),
            (LineResult::Imported(id), false) => writeln!(out, "line {number}: imported {id}"),
            (LineResult::Failed(detail), false) => writeln!(out, "line {number}: failed: {}", failure_text(detail)),
        };
    }
    let _ = if json {
        writeln!(out, "{}", json!({"imported": imported, "failed": failed}))
    } else {
        writeln!(out, "imported {imported}, failed {failed} (of {} lines)", results.len())
    };
    if failed > 0 {
        // Scripts branch on the exit code; every line's result still goes to stdout.
        print!("{out}");
        return Err(Failure {
            message: format!("{failed} of {} lines were not imported", results.len()),
            code: 1,
        });
    }
    Ok(out)
}
