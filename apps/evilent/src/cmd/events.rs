//! `evilent events schema`.

use std::path::Path;

use anyhow::Context;
use evilent_contracts::Event;

pub fn schema(out: Option<&Path>) -> anyhow::Result<()> {
    let schemas = Event::schemas();
    match out {
        None => {
            let all: serde_json::Map<String, serde_json::Value> = schemas
                .into_iter()
                .map(|(name, s)| (name.to_owned(), s))
                .collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for (name, schema) in schemas {
                let path = dir.join(format!("{name}.schema.json"));
                std::fs::write(&path, serde_json::to_string_pretty(&schema)? + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}
