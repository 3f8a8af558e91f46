//! `shoal version`.

/// The gossip protocol versions, as Consul reports them, since tools parse this line.
const PROTOCOL_LINE: &str = "Protocol 2 spoken by default, understands 2 to 3 \
     (agent will automatically use protocol >2 when speaking to compatible agents)";

pub fn run() {
    println!("Shoal v{}", env!("CARGO_PKG_VERSION"));
    println!("{PROTOCOL_LINE}");
}
