//! Rebuilds the crate when a migration or a Lua script changes: both are embedded at
//! compile time (`refinery::embed_migrations!`, `include_str!`), and a new file in
//! `sql/` would otherwise go unnoticed by a warm build.
fn main() {
    println!("cargo:rerun-if-changed=../sql");
    println!("cargo:rerun-if-changed=../lua");
}
