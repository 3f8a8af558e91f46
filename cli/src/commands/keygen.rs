//! `shoal keygen`: prints a new gossip encryption key (32 random bytes, base64), for
//! `-encrypt` and `shoal keyring -install`.

use anyhow::Result;

pub fn run() -> Result<()> {
    println!("{}", shoal_agent::gossip::generate_key()?);
    Ok(())
}
