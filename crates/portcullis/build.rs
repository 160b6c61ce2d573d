//! Compiles openapi.yaml's paths and the methods each declares into the library, for the CORS
//! preflight (api/cors.rs): the functions carry a table, not a YAML parser and a 57 kB document.

use std::fmt::Write;

const CONTRACT: &str = "../../openapi.yaml";
const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

fn main() {
    println!("cargo::rerun-if-changed={CONTRACT}");
    let text = std::fs::read_to_string(CONTRACT).expect("openapi.yaml beside the workspace");
    let contract: serde_json::Value = serde_norway::from_str(&text).expect("openapi.yaml is YAML");
    let paths = contract["paths"].as_object().expect("openapi.yaml has paths");
    let mut table = String::from("pub(crate) const DECLARED_METHODS: &[(&str, &[&str])] = &[\n");
    for (path, item) in paths {
        let declared: Vec<&str> = METHODS.into_iter().filter(|m| item.get(m.to_ascii_lowercase()).is_some()).collect();
        writeln!(table, "    ({path:?}, &{declared:?}),").expect("a string takes writes");
    }
    table.push_str("];\n");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("declared_methods.rs");
    std::fs::write(out, table).expect("OUT_DIR is writable");
}
