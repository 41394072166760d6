//! From what an operator types (a name, an ID, or an unambiguous ID prefix)
//! to one object's ID.

use anyhow::bail;
use swarm_proto::v1::ListFilters;

/// The two list filters that fetch every object `reference` may name: by
/// name, and by ID prefix (an exact ID is a prefix of itself). Their
/// results, together, are what [`pick`] chooses among.
pub fn filters(reference: &str) -> [ListFilters; 2] {
    let by_name = ListFilters {
        names: vec![reference.to_string()],
        ..Default::default()
    };
    let by_id_prefix = ListFilters {
        id_prefixes: vec![reference.to_string()],
        ..Default::default()
    };
    [by_name, by_id_prefix]
}

/// Picks the one object `reference` names among `candidates` (id, name):
/// an exact ID, then a name (case-insensitive), then a unique ID prefix.
pub fn pick(kind: &str, reference: &str, candidates: &[(String, String)]) -> anyhow::Result<String> {
    // Every ID starts with the empty prefix: `rm ""` (an unset variable)
    // must not remove the one object there is.
    if reference.trim().is_empty() {
        bail!("the {kind} name or ID is empty");
    }
    if let Some((id, _)) = candidates.iter().find(|(id, _)| id == reference) {
        return Ok(id.clone());
    }
    let by_name: Vec<&String> = candidates
        .iter()
        .filter(|(_, name)| name.eq_ignore_ascii_case(reference))
        .map(|(id, _)| id)
        .collect();
    match by_name[..] {
        [id] => return Ok(id.clone()),
        // Names are unique but for nodes' hostnames.
        [_, _, ..] => {
            bail!(
                "{kind} {reference:?} is ambiguous: it names {}",
                some_of(by_name.iter().map(|id| id.as_str()))
            )
        }
        [] => {}
    }
    let by_prefix: Vec<&String> = candidates
        .iter()
        .filter(|(id, _)| id.starts_with(reference))
        .map(|(id, _)| id)
        .collect();
    match by_prefix[..] {
        [id] => Ok(id.clone()),
        [] => bail!("{kind} {reference:?} not found"),
        _ => {
            bail!(
                "{kind} {reference:?} is ambiguous: it matches {}",
                some_of(by_prefix.iter().map(|id| id.as_str()))
            )
        }
    }
}

/// The first few of `ids`, and how many more: a one-character prefix of
/// a large cluster's IDs matches thousands.
fn some_of<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 5;
    let total = ids.len();
    let shown: Vec<&str> = ids.take(SHOWN).collect();
    match total - shown.len() {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates() -> Vec<(String, String)> {
        vec![("abc123".into(), "web".into()), ("abd456".into(), "db".into())]
    }

    #[test]
    fn an_id_a_name_or_a_unique_prefix_names_one_object() {
        assert_eq!(pick("service", "abc123", &candidates()).unwrap(), "abc123");
        assert_eq!(pick("service", "WEB", &candidates()).unwrap(), "abc123");
        assert_eq!(pick("service", "abd", &candidates()).unwrap(), "abd456");
    }

    #[test]
    fn an_ambiguous_prefix_of_many_names_a_few_and_counts_the_rest() {
        let candidates: Vec<(String, String)> = (0..12).map(|n| (format!("a{n:02}"), format!("s{n}"))).collect();
        let err = pick("service", "a", &candidates).unwrap_err().to_string();
        assert!(err.ends_with("a00, a01, a02, a03, a04 and 7 more"), "{err}");
    }

    #[test]
    fn a_hostname_two_nodes_share_is_ambiguous() {
        let nodes = vec![("abc123".into(), "n1".into()), ("xyz789".into(), "n1".into())];
        let err = pick("node", "n1", &nodes).unwrap_err().to_string();
        assert!(
            err.contains("ambiguous") && err.contains("abc123") && err.contains("xyz789"),
            "{err}"
        );
        assert_eq!(pick("node", "xyz", &nodes).unwrap(), "xyz789");
    }

    #[test]
    fn an_ambiguous_prefix_lists_its_matches_and_an_unknown_one_is_not_found() {
        let err = pick("service", "ab", &candidates()).unwrap_err().to_string();
        assert!(
            err.contains("ambiguous") && err.contains("abc123") && err.contains("abd456"),
            "{err}"
        );
        let err = pick("service", "zzz", &candidates()).unwrap_err().to_string();
        assert_eq!(err, "service \"zzz\" not found");
    }

    #[test]
    fn an_empty_reference_names_nothing_even_with_one_candidate() {
        let one = vec![("abc123".to_string(), "web".to_string())];
        for empty in ["", " "] {
            let err = pick("secret", empty, &one).unwrap_err().to_string();
            assert!(err.contains("empty"), "{err}");
        }
    }
}
