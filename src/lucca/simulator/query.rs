//! Lucca v3 query conventions: case-insensitive parameters, `paging`, the `fields=`
//! projection (brackets and dot paths) and the comparison filters.

use serde_json::{Map, Value};

use super::{bad_request, Refusal};
use crate::lucca::model::parse_lucca_datetime;

pub(super) const DEFAULT_PROJECTION: &str = "id,name,url";
pub(super) const MAX_PAGE: usize = 1000;

pub(super) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// Query parameters, names matched case-insensitively like ASP.NET does.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn new(raw: Option<String>) -> Self {
        Params(query_pairs(raw.as_deref()))
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn paging(&self) -> Result<(usize, usize), Refusal> {
        let Some(value) = self.get("paging") else {
            return Ok((0, MAX_PAGE));
        };
        let parsed = value
            .split_once(',')
            .and_then(|(o, l)| Some((o.trim().parse().ok()?, l.trim().parse().ok()?)));
        match parsed {
            Some((_, limit)) if limit > MAX_PAGE => Err(bad_request(format!(
                "paging: the limit cannot exceed {MAX_PAGE} (got {limit})"
            ))),
            Some(paging) => Ok(paging),
            None => Err(bad_request(format!(
                "paging must be '{{offset}},{{limit}}' (got '{value}')"
            ))),
        }
    }

    /// The projection and whether `collection.count` was asked for.
    pub(super) fn fields(&self) -> Result<(Vec<FieldSel>, bool), Refusal> {
        let raw = self.get("fields").unwrap_or(DEFAULT_PROJECTION);
        let mut selection = parse_fields(raw).map_err(bad_request)?;
        let before = selection.len();
        selection.retain(|s| {
            !(s.name.eq_ignore_ascii_case("collection")
                && s.children
                    .iter()
                    .any(|c| c.name.eq_ignore_ascii_case("count")))
        });
        let with_count = before != selection.len();
        Ok((selection, with_count))
    }
}

/// One node of a `fields=` projection: `manager[id,name]` or `manager.name` give `manager`
/// with children.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FieldSel {
    name: String,
    children: Vec<FieldSel>,
}

fn parse_fields(raw: &str) -> Result<Vec<FieldSel>, String> {
    let mut out: Vec<FieldSel> = Vec::new();
    for token in split_top_level(raw)? {
        let token = token.trim();
        if token.is_empty() {
            continue;
        }
        let node = match token.find('[') {
            Some(open) if token.ends_with(']') => FieldSel {
                name: token[..open].trim().to_string(),
                children: parse_fields(&token[open + 1..token.len() - 1])?,
            },
            Some(_) => return Err(format!("fields: cannot read `{token}`")),
            None => token
                .rsplit('.')
                .fold(None, |child, name| {
                    Some(FieldSel {
                        name: name.trim().to_string(),
                        children: child.into_iter().collect(),
                    })
                })
                .ok_or_else(|| format!("fields: cannot read `{token}`"))?,
        };
        if node.name.is_empty() {
            return Err(format!("fields: `{token}` has an empty name"));
        }
        merge_field(&mut out, node);
    }
    Ok(out)
}

fn merge_field(into: &mut Vec<FieldSel>, node: FieldSel) {
    match into
        .iter_mut()
        .find(|f| f.name.eq_ignore_ascii_case(&node.name))
    {
        Some(existing) => {
            for child in node.children {
                merge_field(&mut existing.children, child);
            }
        }
        None => into.push(node),
    }
}

fn split_top_level(raw: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in raw.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth < 0 {
                    return Err("fields: unbalanced `]`".into());
                }
            }
            ',' if depth == 0 => {
                parts.push(&raw[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("fields: unbalanced `[`".into());
    }
    parts.push(&raw[start..]);
    Ok(parts)
}

/// Apply a projection to an entity. Field names match case-insensitively; a sub-entity asked
/// for without sub-fields gets the default `id,name,url`; unknown fields are left out.
pub(super) fn project(value: &Value, selection: &[FieldSel]) -> Value {
    let Value::Object(map) = value else {
        return value.clone();
    };
    let mut out = Map::new();
    for sel in selection {
        let Some((key, v)) = map.iter().find(|(k, _)| k.eq_ignore_ascii_case(&sel.name)) else {
            continue;
        };
        let projected = if sel.children.is_empty() {
            match v {
                Value::Object(o) if o.contains_key("id") => project(v, &default_selection()),
                _ => v.clone(),
            }
        } else {
            match v {
                Value::Array(items) => Value::Array(
                    items
                        .iter()
                        .map(|item| project(item, &sel.children))
                        .collect(),
                ),
                other => project(other, &sel.children),
            }
        };
        out.insert(key.clone(), projected);
    }
    Value::Object(out)
}

fn default_selection() -> Vec<FieldSel> {
    parse_fields(DEFAULT_PROJECTION).unwrap_or_default()
}

/// `mail=x` is strict (case-insensitive, like Lucca's collation); `mail=like,x` is a substring
/// search.
pub(super) fn text_filter(value: Option<&Value>, filter: &str) -> bool {
    let Some(actual) = value.and_then(Value::as_str) else {
        return false;
    };
    let actual = actual.to_lowercase();
    match filter.strip_prefix("like,") {
        Some(part) => actual.contains(&part.to_lowercase()),
        None => actual == filter.to_lowercase(),
    }
}

/// `since,{date}`, `until,{date}`, `between,{a},{b}`, `null`, `notequal,null`, or a bare date.
pub(super) fn date_filter(value: Option<&Value>, filter: &str) -> Result<bool, String> {
    let actual = value.and_then(Value::as_str).and_then(parse_lucca_datetime);
    let parse =
        |s: &str| parse_lucca_datetime(s).ok_or_else(|| format!("cannot read the date `{s}`"));
    let mut parts = filter.splitn(3, ',');
    let op = parts.next().unwrap_or_default().to_ascii_lowercase();
    Ok(match op.as_str() {
        "null" => actual.is_none(),
        "notequal" if parts.next() == Some("null") => actual.is_some(),
        "since" => {
            actual.is_some_and(|a| parse(parts.next().unwrap_or_default()).is_ok_and(|d| a >= d))
        }
        "until" => {
            actual.is_some_and(|a| parse(parts.next().unwrap_or_default()).is_ok_and(|d| a <= d))
        }
        "between" => {
            let from = parse(parts.next().unwrap_or_default())?;
            let to = parse(parts.next().unwrap_or_default())?;
            actual.is_some_and(|a| a >= from && a <= to)
        }
        _ => {
            let wanted = parse(filter)?;
            actual == Some(wanted)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn projections_accept_brackets_and_dot_paths() {
        let fields = parse_fields("id,manager[id,name],manager.mail,collection.count").unwrap();
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[1].name, "manager");
        let children: Vec<&str> = fields[1].children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(children, ["id", "name", "mail"]);
        assert!(parse_fields("id,manager[id").is_err());
        let user = json!({"id": 1, "Login": "x", "manager": {"id": 2, "name": "B", "url": "u", "mail": "m"}, "dept": {"id": 3, "name": "D", "url": "v", "code": "c"}});
        assert_eq!(
            project(
                &user,
                &parse_fields("id,login,manager.mail,dept,nope").unwrap()
            ),
            json!({"id": 1, "Login": "x", "manager": {"mail": "m"}, "dept": {"id": 3, "name": "D", "url": "v"}})
        );
    }
}
