//! `ls --filter KEY=VALUE`, as docker's: a key given more than once
//! matches any of its values (labels excepted: an object must carry every
//! label asked for), and different keys must all match.
//!
//! Every `ls` takes `id` (an ID prefix), `name` (a name prefix, or a
//! hostname prefix for nodes) and `label` (`key` or `key=value`); those go
//! to the Control API's `ListFilters`. An `ls` may take more keys of its
//! own (a node's role, a task's node), which it reads with [`Filters::values`].

use swarm_proto::v1::ListFilters;

use crate::commands::BadValue;

/// One `--filter`, split at its first `=`.
#[derive(Clone, Debug)]
pub struct Filter {
    key: String,
    value: String,
}

/// The clap value parser of `--filter`. The key is read as docker reads
/// it: in any case, spaces around it ignored.
pub fn parse(text: &str) -> Result<Filter, String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE (for example name=web or label=env=prod)"))?;
    let key = key.trim().to_lowercase();
    let value = value.trim();
    if key.is_empty() || value.is_empty() {
        return Err(format!("{text:?} needs both a key and a value, as in name=web"));
    }
    if (key == "label" || key == NODE_LABEL) && value.starts_with('=') {
        return Err(format!("{text:?}: the label has no key, as in label=env=prod"));
    }
    Ok(Filter {
        key,
        value: value.to_string(),
    })
}

/// The keys every `ls` takes.
const COMMON_KEYS: [&str; 3] = ["id", "name", "label"];

/// Docker's key for a node's own labels (its `label` means the engine's);
/// a node's labels here are those of its spec, so `node ls` takes both.
pub const NODE_LABEL: &str = "node.label";

/// The filters of one `ls`, checked against the keys it takes.
#[derive(Debug)]
pub struct Filters {
    filters: Vec<Filter>,
}

impl Filters {
    /// Refuses a key that is neither common nor one of `own_keys`, naming
    /// the keys this `ls` takes.
    pub fn new(filters: Vec<Filter>, own_keys: &[&str]) -> Result<Self, BadValue> {
        let known = |key: &str| COMMON_KEYS.contains(&key) || own_keys.contains(&key);
        if let Some(unknown) = filters.iter().find(|filter| !known(&filter.key)) {
            let keys: Vec<&str> = COMMON_KEYS.iter().chain(own_keys).copied().collect();
            return Err(BadValue(format!(
                "--filter {}={}: unknown key {:?}; this command filters by {}",
                unknown.key,
                unknown.value,
                unknown.key,
                keys.join(", ")
            )));
        }
        Ok(Filters { filters })
    }

    /// The values given for `key`, in the order given.
    pub fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.filters
            .iter()
            .filter(move |filter| filter.key == key)
            .map(|filter| filter.value.as_str())
    }

    /// The common keys, as the Control API takes them.
    pub fn list_filters(&self) -> ListFilters {
        let owned = |key| self.values(key).map(str::to_string).collect();
        ListFilters {
            id_prefixes: owned("id"),
            name_prefixes: owned("name"),
            labels: self
                .values("label")
                .chain(self.values(NODE_LABEL))
                .map(str::to_string)
                .collect(),
            names: Vec::new(),
        }
    }

    /// The values of `key` as enum values of the API, among `choices`:
    /// each a word as swarmctl prints it (`manager`, from
    /// [`crate::commands::enum_word`]) and the value it names.
    pub fn enum_values(&self, key: &str, choices: &[(String, i32)]) -> Result<Vec<i32>, BadValue> {
        self.values(key)
            .map(|value| {
                let found = choices.iter().find(|(word, _)| word.eq_ignore_ascii_case(value));
                found.map(|&(_, api_value)| api_value).ok_or_else(|| {
                    let words: Vec<&str> = choices.iter().map(|(word, _)| word.as_str()).collect();
                    BadValue(format!("--filter {key}={value}: {key} is one of {}", words.join(", ")))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use swarm_proto::v1::NodeRole;

    use super::*;

    fn filters(texts: &[&str], own_keys: &[&str]) -> Result<Filters, BadValue> {
        let parsed = texts.iter().map(|text| parse(text)).collect::<Result<Vec<_>, _>>();
        Filters::new(parsed.expect("well-formed filters"), own_keys)
    }

    #[test]
    fn parse_splits_at_the_first_equals_sign() {
        let filter = parse("label=env=prod").expect("parses");
        assert_eq!((filter.key.as_str(), filter.value.as_str()), ("label", "env=prod"));
        assert!(parse("name").is_err());
        assert!(parse("=web").is_err());
        assert!(parse("name=").is_err());
        assert!(parse("label==prod").is_err(), "a label filter without a key");
        let filter = parse(" NAME = web").expect("a key in another case, spaced");
        assert_eq!((filter.key.as_str(), filter.value.as_str()), ("name", "web"));
    }

    #[test]
    fn common_keys_become_list_filters() {
        let filters = filters(&["name=web", "id=abc", "name=db", "label=env"], &[]).expect("known keys");
        let list = filters.list_filters();
        assert_eq!(list.name_prefixes, ["web", "db"]);
        assert_eq!(list.id_prefixes, ["abc"]);
        assert_eq!(list.labels, ["env"]);
        assert!(list.names.is_empty());
    }

    #[test]
    fn a_node_label_filter_asks_for_the_labels_a_label_filter_does() {
        let filters = filters(&["node.label=zone=a", "label=ssd"], &[NODE_LABEL]).expect("known keys");
        assert_eq!(filters.list_filters().labels, ["ssd", "zone=a"]);
        assert!(parse("node.label==a").is_err(), "a node label filter without a key");
        assert!(
            self::filters(&["node.label=zone"], &[]).is_err(),
            "only where a list takes it"
        );
    }

    #[test]
    fn an_unknown_key_is_refused_with_the_keys_that_work() {
        let err = filters(&["name=web", "role=manager"], &[]).expect_err("role is not a service filter");
        assert!(err.0.contains("unknown key \"role\""), "{err}");
        assert!(err.0.contains("id, name, label"), "{err}");
        let err = filters(&["colour=red"], &["role"]).expect_err("unknown");
        assert!(err.0.ends_with("id, name, label, role"), "{err}");
    }

    #[test]
    fn enum_values_take_only_the_choices_given() {
        let choices = [
            ("manager".to_string(), NodeRole::Manager as i32),
            ("worker".to_string(), NodeRole::Worker as i32),
        ];
        let filters = filters(&["role=manager", "role=worker"], &["role"]).expect("known key");
        let roles = filters.enum_values("role", &choices);
        assert_eq!(
            roles.expect("valid"),
            [NodeRole::Manager as i32, NodeRole::Worker as i32]
        );
        let filters = self::filters(&["role=Manager"], &["role"]).expect("known key");
        assert_eq!(
            filters.enum_values("role", &choices).expect("any case"),
            [NodeRole::Manager as i32]
        );
        for bad in ["role=leader", "role=managers"] {
            let filters = self::filters(&[bad], &["role"]).expect("known key");
            let err = filters.enum_values("role", &choices).expect_err(bad);
            assert!(err.0.contains("role is one of manager, worker"), "{err}");
        }
    }
}
