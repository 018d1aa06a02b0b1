//! The Nomad jobs in `nomad/` as Nomad reads them, without a Nomad agent:
//! HCL2 evaluated as `nomad job run` evaluates it (variables, locals,
//! `file()`, `replace()`; runtime variables such as `${NOMAD_PORT_http}`
//! left for the client), and a task prepared as the Nomad client prepares
//! it: its task directory, its environment, and its templates rendered as Go
//! templates (`nomadService`, `nomadVar`, `env`, `error_on_missing_key`,
//! custom delimiters, `env = true` files read back as environment).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gotmpl::{MissingKey, Template, Value as GoValue};
use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use serde_json::Value;

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// HCL's `file(path)`, relative to where `nomad job run` runs: the
/// repository root, as the job files say.
fn file(args: FuncArgs) -> Result<hcl::Value, String> {
    let path = args[0].as_str().ok_or("file() takes a path")?;
    std::fs::read_to_string(repository().join(path))
        .map(hcl::Value::from)
        .map_err(|e| format!("file({path}): {e}"))
}

fn replace(args: FuncArgs) -> Result<hcl::Value, String> {
    let [text, from, to] = [0, 1, 2].map(|i| args[i].as_str().unwrap_or_default().to_string());
    Ok(hcl::Value::from(text.replace(&from, &to)))
}

/// `nomad/<name>` evaluated with `vars` set as `-var` sets them: a JSON
/// view of the job in which every expression has its value.
pub fn evaluate_job(name: &str, vars: &[(&str, &str)]) -> Value {
    let text = std::fs::read_to_string(repository().join("nomad").join(name))
        .unwrap_or_else(|e| panic!("read nomad/{name}: {e}"));
    let body = hcl::parse(&text).unwrap_or_else(|e| panic!("{name} is not valid HCL: {e}"));
    let mut ctx = Context::new();
    ctx.declare_func("file", FuncDef::new(file, [ParamType::String]));
    ctx.declare_func(
        "replace",
        FuncDef::new(
            replace,
            [ParamType::String, ParamType::String, ParamType::String],
        ),
    );
    // Type constraints of variable blocks (`type = string`) are keywords.
    for keyword in ["string", "number", "bool", "any"] {
        ctx.declare_var(keyword, keyword);
    }
    // The client fills these in: they stay as they are written.
    for word in text.split("${").skip(1) {
        let name: String = word
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.starts_with("NOMAD_") {
            ctx.declare_var(name.clone(), format!("${{{name}}}"));
        }
    }
    let mut variables = hcl::Map::new();
    for block in body.blocks().filter(|b| b.identifier() == "variable") {
        let name = block.labels()[0].as_str().to_string();
        let given = vars.iter().find(|(k, _)| *k == name);
        // `-var` values are text; a number variable takes them as numbers.
        let number = block
            .body()
            .attributes()
            .any(|a| a.key() == "type" && a.expr().evaluate(&ctx).ok() == Some("number".into()));
        let value = match given {
            Some((_, value)) if number => Some(hcl::Value::from(
                value.parse::<i64>().expect("a number variable's value"),
            )),
            Some((_, value)) => Some(hcl::Value::from(*value)),
            None => block
                .body()
                .attributes()
                .find(|a| a.key() == "default")
                .map(|a| a.expr().evaluate(&ctx).expect("a variable's default")),
        };
        let value = value.unwrap_or_else(|| panic!("{name}: variable without a value"));
        variables.insert(name, value);
    }
    ctx.declare_var("var", hcl::Value::Object(variables));
    let mut locals = hcl::Map::new();
    for block in body.blocks().filter(|b| b.identifier() == "locals") {
        for attribute in block.body().attributes() {
            let value = attribute
                .expr()
                .evaluate(&ctx)
                .unwrap_or_else(|e| panic!("local.{}: {e}", attribute.key()));
            locals.insert(attribute.key().to_string(), value);
        }
    }
    ctx.declare_var("local", hcl::Value::Object(locals));
    hcl::eval::from_str(&text, &ctx).unwrap_or_else(|e| panic!("{name} does not evaluate: {e}"))
}

/// A list of blocks, whether HCL gave one or several.
pub fn blocks(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

/// What service discovery, Nomad Variables and the node answer while a task
/// is prepared.
#[derive(Clone, Default)]
pub struct Cluster {
    /// Address and port of each registered instance, by service name.
    pub services: BTreeMap<String, Vec<(String, u16)>>,
    /// Items by variable path.
    pub variables: BTreeMap<String, BTreeMap<String, String>>,
    /// Node attributes (`attr.…`), as `env` gives them.
    pub attributes: BTreeMap<String, String>,
}

/// Renders one template block's `data` as the Nomad client does, with
/// `env` the task's environment. A render error fails the task in Nomad.
pub fn render(
    template: &Value,
    cluster: &Cluster,
    env: &BTreeMap<String, String>,
) -> Result<String, String> {
    let data = template["data"].as_str().ok_or("a template without data")?;
    let left = template["left_delimiter"].as_str().unwrap_or("{{");
    let right = template["right_delimiter"].as_str().unwrap_or("}}");
    let missing = if template["error_on_missing_key"] == true {
        MissingKey::Error
    } else {
        MissingKey::Invalid
    };
    let services = cluster.services.clone();
    let variables = cluster.variables.clone();
    let mut lookup = env.clone();
    lookup.extend(cluster.attributes.clone());
    let name = |args: &[GoValue]| match args.first() {
        Some(GoValue::String(name)) => Ok(name.to_string()),
        _ => Err(gotmpl::TemplateError::Exec("expects a name".into())),
    };
    Template::new("template")
        .delims(left, right)
        .missing_key(missing)
        .func("nomadService", move |args| {
            let instances = services.get(&name(args)?).cloned().unwrap_or_default();
            let list: Vec<GoValue> = instances
                .into_iter()
                .map(|(address, port)| {
                    let mut fields = BTreeMap::new();
                    fields.insert(Arc::from("Address"), GoValue::String(address.into()));
                    fields.insert(Arc::from("Port"), GoValue::Uint(u64::from(port)));
                    GoValue::Map(Arc::new(fields))
                })
                .collect();
            Ok(GoValue::List(list.into()))
        })
        .func("nomadVar", move |args| {
            let path = name(args)?;
            // Nomad waits for a variable that does not exist: the task never
            // starts. Here that is an error naming it.
            let items = variables.get(&path).ok_or_else(|| {
                gotmpl::TemplateError::Exec(format!("Missing: nomad.var.block({path})"))
            })?;
            let fields = items
                .iter()
                .map(|(k, v)| (Arc::from(k.as_str()), GoValue::String(v.as_str().into())))
                .collect();
            Ok(GoValue::Map(Arc::new(fields)))
        })
        .func("env", move |args| {
            Ok(GoValue::String(
                lookup.get(&name(args)?).cloned().unwrap_or_default().into(),
            ))
        })
        .parse(data)
        .map_err(|e| e.to_string())?
        .execute_to_string(&GoValue::Nil)
        .map_err(|e| e.to_string())
}

/// Variables an `env = true` file sets, read as Nomad reads them
/// (`KEY=value` lines; blank lines and `#` comments skipped).
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("not KEY=value: {line}"))?;
        vars.push((key.trim().to_string(), value.trim().to_string()));
    }
    Ok(vars)
}

/// A task made ready to start as the Nomad client would: its directories,
/// its environment (the `env` block, runtime variables, `env = true`
/// templates) and its arguments.
pub struct PreparedTask {
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// The allocation's root: `alloc/`, `local/`, `secrets/`.
    pub root: PathBuf,
}

/// Fills in `${NOMAD_…}` references from `env`.
fn interpolate(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (key, value) in env {
        out = out.replace(&format!("${{{key}}}"), value);
    }
    out
}

/// Prepares `task` in `root`, with its group's ports given by `ports`
/// (label → port). A template's `uid` is not applied: the tests run the
/// task as their own user. The docker driver mounts the task's directories
/// at `/alloc`, `/local` and `/secrets`; here they are `root`'s, which the
/// environment variables name the way the driver's do.
pub fn prepare_task(
    task: &Value,
    ports: &BTreeMap<String, u16>,
    cluster: &Cluster,
    root: &Path,
) -> Result<PreparedTask, String> {
    let dir = |name: &str| {
        let path = root.join(name);
        std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        Ok::<_, String>(path.display().to_string())
    };
    let mut env = BTreeMap::from([
        ("NOMAD_ALLOC_DIR".to_string(), dir("alloc")?),
        ("NOMAD_TASK_DIR".to_string(), dir("local")?),
        ("NOMAD_SECRETS_DIR".to_string(), dir("secrets")?),
        ("NOMAD_ALLOC_INDEX".to_string(), "0".to_string()),
    ]);
    for (label, port) in ports {
        env.insert(format!("NOMAD_PORT_{label}"), port.to_string());
        env.insert(format!("NOMAD_ADDR_{label}"), format!("127.0.0.1:{port}"));
    }
    if let Some(vars) = task["env"].as_object() {
        for (key, value) in vars {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string);
            env.insert(key.clone(), interpolate(&value, &env));
        }
    }
    for template in blocks(&task["template"]) {
        let destination = template["destination"]
            .as_str()
            .ok_or("a template without a destination")?;
        let text = render(&template, cluster, &env)
            .map_err(|e| format!("Template failed ({destination}): {e}"))?;
        let path = root.join(destination);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, &text).map_err(|e| e.to_string())?;
        if let Some(perms) = template["perms"].as_str() {
            let mode = u32::from_str_radix(perms, 8).map_err(|e| e.to_string())?;
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .map_err(|e| e.to_string())?;
        }
        if template["env"] == true {
            for (key, value) in parse_env_file(&text)
                .map_err(|e| format!("Template failed to read environment variables: {e}"))?
            {
                env.insert(key, value);
            }
        }
    }
    let args = blocks(&task["config"]["args"])
        .iter()
        .map(|a| interpolate(a.as_str().unwrap_or_default(), &env))
        .collect();
    Ok(PreparedTask {
        args,
        env,
        root: root.to_path_buf(),
    })
}
