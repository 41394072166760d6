//! `swarmctl secret ...` and `swarmctl config ...`: named data given to
//! services. The two kinds differ only in their RPCs, so one generic set of
//! actions serves both. A secret's data is never shown: the manager never
//! returns it.

use anyhow::Context as _;
use swarm_proto::v1::{
    Annotations, Config, ConfigSpec, CreateConfigRequest, CreateSecretRequest, ListConfigsRequest, ListFilters,
    ListSecretsRequest, Meta, RemoveConfigRequest, RemoveSecretRequest, Secret, SecretSpec, UpdateConfigRequest,
    UpdateSecretRequest,
};

use super::{
    BadValue, EachObject, change_labels, change_reply, inspect_each, key_values, label_pairs, labels, name, reply,
};
use crate::cli::DataCommand;
use crate::connect::Control;
use crate::filter::Filters;
use crate::output::{self, Format};
use crate::resolve;

/// A kind of named data: its RPCs and where its fields are.
pub trait Data: prost::Message + prost::Name + Clone {
    /// The kind, as messages name it.
    const KIND: &'static str;
    fn id(&self) -> &str;
    fn meta(&self) -> Option<&Meta>;
    fn annotations(&self) -> Option<&Annotations>;
    /// Those that match `filters`.
    async fn list_matching(control: &mut Control, filters: ListFilters) -> anyhow::Result<Vec<Self>>;
    /// All of them.
    async fn list(control: &mut Control) -> anyhow::Result<Vec<Self>> {
        Self::list_matching(control, ListFilters::default()).await
    }
    async fn create(control: &mut Control, annotations: Annotations, data: Vec<u8>) -> anyhow::Result<Self>;
    /// Stores `annotations` (changed labels) with the data left as it is,
    /// at the version `item` was read at.
    async fn update(control: &mut Control, item: &Self, annotations: Annotations) -> anyhow::Result<()>;
    async fn remove(control: &mut Control, id: String) -> anyhow::Result<()>;
}

impl Data for Secret {
    const KIND: &'static str = "secret";
    fn id(&self) -> &str {
        &self.id
    }
    fn meta(&self) -> Option<&Meta> {
        self.meta.as_ref()
    }
    fn annotations(&self) -> Option<&Annotations> {
        self.spec.as_ref()?.annotations.as_ref()
    }
    async fn list_matching(control: &mut Control, filters: ListFilters) -> anyhow::Result<Vec<Secret>> {
        let request = ListSecretsRequest { filters: Some(filters) };
        Ok(reply(control.list_secrets(request).await)?.secrets)
    }
    async fn create(control: &mut Control, annotations: Annotations, data: Vec<u8>) -> anyhow::Result<Secret> {
        let spec = SecretSpec {
            annotations: Some(annotations),
            data,
        };
        let created = change_reply(control.create_secret(CreateSecretRequest { spec: Some(spec) }).await)?;
        Ok(created.secret.unwrap_or_default())
    }
    async fn update(control: &mut Control, secret: &Secret, annotations: Annotations) -> anyhow::Result<()> {
        let request = UpdateSecretRequest {
            secret_id: secret.id.clone(),
            secret_version: secret.meta.as_ref().map_or(0, |meta| meta.version),
            // No data: the manager keeps what it holds (and never returns).
            spec: Some(SecretSpec {
                annotations: Some(annotations),
                data: Vec::new(),
            }),
        };
        change_reply(control.update_secret(request).await)?;
        Ok(())
    }
    async fn remove(control: &mut Control, secret_id: String) -> anyhow::Result<()> {
        change_reply(control.remove_secret(RemoveSecretRequest { secret_id }).await)?;
        Ok(())
    }
}

impl Data for Config {
    const KIND: &'static str = "config";
    fn id(&self) -> &str {
        &self.id
    }
    fn meta(&self) -> Option<&Meta> {
        self.meta.as_ref()
    }
    fn annotations(&self) -> Option<&Annotations> {
        self.spec.as_ref()?.annotations.as_ref()
    }
    async fn list_matching(control: &mut Control, filters: ListFilters) -> anyhow::Result<Vec<Config>> {
        let request = ListConfigsRequest { filters: Some(filters) };
        Ok(reply(control.list_configs(request).await)?.configs)
    }
    async fn create(control: &mut Control, annotations: Annotations, data: Vec<u8>) -> anyhow::Result<Config> {
        let spec = ConfigSpec {
            annotations: Some(annotations),
            data,
        };
        let created = change_reply(control.create_config(CreateConfigRequest { spec: Some(spec) }).await)?;
        Ok(created.config.unwrap_or_default())
    }
    async fn update(control: &mut Control, config: &Config, annotations: Annotations) -> anyhow::Result<()> {
        let request = UpdateConfigRequest {
            config_id: config.id.clone(),
            config_version: config.meta.as_ref().map_or(0, |meta| meta.version),
            spec: Some(ConfigSpec {
                annotations: Some(annotations),
                data: Vec::new(),
            }),
        };
        change_reply(control.update_config(request).await)?;
        Ok(())
    }
    async fn remove(control: &mut Control, config_id: String) -> anyhow::Result<()> {
        change_reply(control.remove_config(RemoveConfigRequest { config_id }).await)?;
        Ok(())
    }
}

pub async fn run<D: Data>(control: &mut Control, command: DataCommand, format: Format) -> anyhow::Result<()> {
    match command {
        DataCommand::Create {
            name,
            source,
            file,
            label,
        } => {
            // clap requires one of the two.
            let file = file.or(source).unwrap_or_default();
            let data = if file.as_os_str() == "-" {
                read_at_most(std::io::stdin(), D::KIND, "standard input")?
            } else {
                let opened = std::fs::File::open(&file).with_context(|| format!("cannot read {}", file.display()))?;
                read_at_most(opened, D::KIND, &file.display().to_string())?
            };
            let annotations = Annotations {
                name,
                labels: key_values(&label, "label")?,
            };
            println!("{}", D::create(control, annotations, data).await?.id());
        }
        DataCommand::Update { reference, labels } => {
            let items = D::list(control).await?;
            let id = resolve::pick(D::KIND, &reference, &candidates(&items))?;
            let item = items
                .into_iter()
                .find(|item| item.id() == id)
                .context("listed a moment ago")?;
            let mut annotations = item.annotations().cloned().unwrap_or_default();
            change_labels(&mut annotations.labels, &labels)?;
            D::update(control, &item, annotations).await?;
            println!("{id}");
        }
        DataCommand::Rm { references } => {
            let mut each = EachObject::default();
            for reference in references {
                let removed = async {
                    let id = resolve::pick(D::KIND, &reference, &candidates(&D::list(control).await?))?;
                    D::remove(control, id.clone()).await?;
                    println!("{id}");
                    Ok(())
                };
                each.record(removed.await);
            }
            each.finish()?;
        }
        DataCommand::Ls(list) => {
            let filters = Filters::new(list.filters, &[])?;
            let mut items = D::list_matching(control, filters.list_filters()).await?;
            // By name, as docker lists them (the store lists by ID).
            items.sort_by_cached_key(|item| name(item.annotations()).to_lowercase());
            if format == Format::Json && !list.quiet {
                return output::json_list(&items);
            }
            let rows = items
                .iter()
                .map(|item| {
                    let meta = item.meta();
                    vec![
                        item.id().to_string(),
                        name(item.annotations()),
                        output::ago(meta.and_then(|meta| meta.created_at.as_ref())),
                        output::ago(meta.and_then(|meta| meta.updated_at.as_ref())),
                        item_labels(item),
                    ]
                })
                .collect();
            output::table(&["ID", "NAME", "CREATED", "UPDATED", "LABELS"], rows, list.quiet)?;
        }
        DataCommand::Inspect { references } => {
            let items = D::list(control).await?;
            let pick = async |reference: &str| {
                let id = resolve::pick(D::KIND, reference, &candidates(&items))?;
                let item = items
                    .iter()
                    .find(|item| item.id() == id)
                    .context("listed a moment ago")?;
                Ok(item.clone())
            };
            let fields = |item: &D| {
                let mut fields = vec![("ID", item.id().to_string()), ("Name", name(item.annotations()))];
                let labels = item.annotations().map(|a| label_pairs(&a.labels)).unwrap_or_default();
                fields.extend(output::list("Labels", labels));
                fields.push(("Version", item.meta().map_or(0, |meta| meta.version).to_string()));
                fields.extend(super::meta_times(item.meta()));
                fields
            };
            inspect_each(&references, format, pick, fields).await?;
        }
    }
    Ok(())
}

/// A service's use of a secret or config, as `--secret`/`--config` name it.
pub struct FileReference {
    pub id: String,
    pub name: String,
    pub target: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// A referenced file's mode unless given: readable by all, as docker
/// writes it into the spec.
pub(crate) const DEFAULT_FILE_MODE: u32 = 0o444;

/// A service's use of a secret or config, from `--secret`/`--config`:
/// `NAME` or `source=NAME[,target=T][,uid=N][,gid=N][,mode=0440]` (Docker's
/// two forms; the mode is octal, as chmod's); the source is resolved to one
/// object here, the target defaulting to `default_target(name)`.
pub async fn reference<D: Data>(
    control: &mut Control,
    flag: &str,
    default_target: impl Fn(&str) -> String,
) -> anyhow::Result<FileReference> {
    let bad = |what: String| BadValue(format!("--{} {flag:?}: {what}", D::KIND));
    let (mut source, mut target, mut uid, mut gid, mut mode) = (None, None, 0, 0, None);
    if flag.contains('=') {
        for field in flag.split(',') {
            let id = |value: &str, what: &str| {
                value
                    .parse::<u32>()
                    .map_err(|_| bad(format!("{what} {value:?} is not a number from 0 to {}", u32::MAX)))
            };
            match field.split_once('=') {
                Some(("source" | "src", value)) if !value.is_empty() => source = Some(value),
                Some(("target", value)) if !value.is_empty() => target = Some(value.to_string()),
                Some(("uid", value)) => uid = id(value, "uid")?,
                Some(("gid", value)) => gid = id(value, "gid")?,
                Some(("mode", value)) => {
                    let bits = u32::from_str_radix(value, 8).ok().filter(|bits| *bits <= 0o777);
                    mode =
                        Some(bits.ok_or_else(|| bad(format!("mode {value:?} is not an octal file mode (0 to 0777)")))?);
                }
                _ => {
                    return Err(
                        bad("expected NAME or source=NAME[,target=PATH][,uid=N][,gid=N][,mode=0440]".into()).into(),
                    );
                }
            }
        }
    } else {
        source = Some(flag).filter(|name| !name.is_empty());
    }
    let Some(source) = source else {
        return Err(BadValue(format!("--{} {flag:?} names no source", D::KIND)).into());
    };
    let items = D::list(control).await?;
    let id = resolve::pick(D::KIND, source, &candidates(&items))?;
    let name = items
        .iter()
        .find(|item| item.id() == id)
        .map(|item| name(item.annotations()))
        .unwrap_or_default();
    let target = target.unwrap_or_else(|| default_target(&name));
    Ok(FileReference {
        id,
        name,
        target,
        uid,
        gid,
        mode: mode.unwrap_or(DEFAULT_FILE_MODE),
    })
}

/// Far more than a secret or config may hold (the manager says how much
/// it takes): reading stops here, so that `/dev/zero` or a huge file by
/// mistake is refused rather than read whole into memory. Below the
/// Control API's 8 MiB request limit, so that what is read gets the
/// manager's own answer, not a transport error.
const READ_LIMIT: u64 = 6 << 20;

/// The data of a new secret or config from `source` (named `what`).
fn read_at_most(source: impl std::io::Read, kind: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut source.take(READ_LIMIT + 1), &mut data)
        .with_context(|| format!("cannot read {what}"))?;
    if data.len() as u64 > READ_LIMIT {
        anyhow::bail!(
            "{what} holds more than {} MiB: far more than a {kind} may",
            READ_LIMIT >> 20
        );
    }
    Ok(data)
}

fn item_labels(item: &impl Data) -> String {
    item.annotations().map(|a| labels(&a.labels)).unwrap_or_default()
}

fn candidates(items: &[impl Data]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|item| (item.id().to_string(), name(item.annotations())))
        .collect()
}
