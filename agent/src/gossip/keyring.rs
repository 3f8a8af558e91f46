//! Gossip encryption: the keyring (serf's `local.keyring` / `remote.keyring`) and the
//! AES-GCM sealing of datagrams and sync streams.
//!
//! A keyring holds a primary key, which seals everything sent, and any number of other
//! keys, which are only tried when opening. That is what lets a key be rotated on a live
//! pool without anyone failing: install the new key everywhere (everyone still seals
//! with the old one and can open both), make it primary everywhere (members switching at
//! different moments still open each other's packets), then remove the old one.
//!
//! Sealed bytes follow memberlist's layout after the kind byte: a random 12-byte nonce,
//! then the ciphertext with its 16-byte tag. The kind byte (and for streams the length
//! after it) is the associated data, so a packet cannot be replayed as another pool's
//! or another kind. That is [`OVERHEAD`] = 29 bytes per datagram, as memberlist's.
//!
//! Keys are 16 or 32 bytes (AES-128 or AES-256, base64 in the configuration and the
//! file); Consul's 24-byte AES-192 keys are refused, since ring has no AES-192.
//!
//! The keyring file is a JSON array of base64 keys, primary first (serf's format),
//! written with mode 0600 after every change, so a restarted agent comes back with the
//! keys the pool rotated to rather than with its `-encrypt` seed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use super::profile::PoolKind;

/// AES-GCM's tag length.
const TAG_LEN: usize = 16;
/// Bytes sealing adds to a datagram: its kind byte, the nonce and the tag (memberlist's
/// 29). The inner kind byte of the sealed datagram is part of the plaintext.
pub const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;
/// Bytes sealing adds inside a frame: nonce and tag.
pub(crate) const SEAL_LEN: usize = NONCE_LEN + TAG_LEN;

/// Why a key or a keyring operation was refused. The texts of the operations are
/// memberlist's, as Consul shows them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("Requested key is not in the keyring")]
    NotInstalled,
    #[error("Removing the primary key is not allowed")]
    RemovePrimary,
    #[error("keyring file {path}: {message}")]
    File { path: PathBuf, message: String },
}

/// One key, with the AES-GCM key ring derives from it.
struct SecretKey {
    bytes: Vec<u8>,
    aead: LessSafeKey,
}

impl SecretKey {
    fn new(bytes: Vec<u8>) -> Result<SecretKey, KeyringError> {
        let algorithm = match bytes.len() {
            16 => &AES_128_GCM,
            32 => &AES_256_GCM,
            24 => {
                return Err(KeyringError::InvalidKey(
                    "24-byte (AES-192) keys are not supported; use 16 or 32 bytes \
                     (`shoal keygen` makes a 32-byte key)"
                        .into(),
                ))
            }
            n => {
                return Err(KeyringError::InvalidKey(format!(
                    "key size must be 16 or 32 bytes, not {n}"
                )))
            }
        };
        let unbound = UnboundKey::new(algorithm, &bytes)
            .map_err(|_| KeyringError::InvalidKey("rejected by AES-GCM".into()))?;
        Ok(SecretKey {
            bytes,
            aead: LessSafeKey::new(unbound),
        })
    }

    fn encoded(&self) -> String {
        encode_key(&self.bytes)
    }
}

/// A base64 key as given to `-encrypt`, `keyring -install`, ... checked for its size.
pub fn decode_key(text: &str) -> Result<Vec<u8>, KeyringError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| KeyringError::InvalidKey(format!("not base64: {e}")))?;
    SecretKey::new(bytes.clone())?;
    Ok(bytes)
}

pub fn encode_key(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A new random 32-byte key, base64 (`shoal keygen`).
pub fn generate_key() -> Result<String, KeyringError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| KeyringError::InvalidKey("the system random source failed".into()))?;
    Ok(encode_key(&bytes))
}

/// What a member has installed: every key, base64, and which one is primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyList {
    pub keys: Vec<String>,
    pub primary: String,
}

/// The keys of one pool; shared by its task, its sync server and the HTTP API.
pub struct Keyring {
    /// Primary first.
    keys: RwLock<Vec<SecretKey>>,
    /// Where every change is written; `None` keeps the keys in memory only.
    path: Option<PathBuf>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// A keyring of `primary` alone, kept in memory.
    pub fn new(primary: Vec<u8>) -> Result<Keyring, KeyringError> {
        Ok(Keyring {
            keys: RwLock::new(vec![SecretKey::new(primary)?]),
            path: None,
            rng: SystemRandom::new(),
        })
    }

    /// The keyring at `path` if the file exists (a `seed` is then ignored, as Consul
    /// ignores `-encrypt` once a keyring exists, with a warning); else one of `seed`
    /// alone, written there; else none: encryption is off.
    pub fn load(path: &Path, seed: Option<&str>) -> Result<Option<Keyring>, KeyringError> {
        let file_error = |message: String| KeyringError::File {
            path: path.to_path_buf(),
            message,
        };
        match std::fs::read(path) {
            Ok(text) => {
                let encoded: Vec<String> = serde_json::from_slice(&text)
                    .map_err(|e| file_error(format!("not a JSON array of keys: {e}")))?;
                if encoded.is_empty() {
                    return Err(file_error("holds no key".into()));
                }
                let mut keys = Vec::with_capacity(encoded.len());
                for key in &encoded {
                    keys.push(SecretKey::new(
                        decode_key(key).map_err(|e| file_error(e.to_string()))?,
                    )?);
                }
                if let Some(seed) = seed {
                    let seeded = decode_key(seed)?;
                    if keys.iter().all(|k| k.bytes != seeded) {
                        tracing::warn!(file = %path.display(),
                            "a keyring file exists, so the encrypt key (which it does not hold) \
                             is ignored; use `shoal keyring -install` to add it");
                    } else {
                        tracing::info!(file = %path.display(),
                            "using the existing keyring file; the encrypt key is ignored");
                    }
                }
                Ok(Some(Keyring {
                    keys: RwLock::new(keys),
                    path: Some(path.to_path_buf()),
                    rng: SystemRandom::new(),
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(seed) = seed else {
                    return Ok(None);
                };
                let keyring = Keyring {
                    keys: RwLock::new(vec![SecretKey::new(decode_key(seed)?)?]),
                    path: Some(path.to_path_buf()),
                    rng: SystemRandom::new(),
                };
                keyring.save()?;
                Ok(Some(keyring))
            }
            Err(e) => Err(file_error(e.to_string())),
        }
    }

    pub fn list(&self) -> KeyList {
        let keys = self.read();
        KeyList {
            keys: keys.iter().map(SecretKey::encoded).collect(),
            primary: keys.first().map(SecretKey::encoded).unwrap_or_default(),
        }
    }

    /// Adds a key for opening (memberlist's `AddKey`); already installed is fine.
    pub fn install(&self, key: &str) -> Result<(), KeyringError> {
        let bytes = decode_key(key)?;
        {
            let mut keys = self.write();
            if keys.iter().any(|k| k.bytes == bytes) {
                return Ok(());
            }
            keys.push(SecretKey::new(bytes)?);
        }
        self.save()
    }

    /// Makes an installed key the primary (memberlist's `UseKey`).
    pub fn use_key(&self, key: &str) -> Result<(), KeyringError> {
        let bytes = decode_key(key)?;
        {
            let mut keys = self.write();
            let at = keys
                .iter()
                .position(|k| k.bytes == bytes)
                .ok_or(KeyringError::NotInstalled)?;
            let chosen = keys.remove(at);
            keys.insert(0, chosen);
        }
        self.save()
    }

    /// Removes a key that is not the primary (memberlist's `RemoveKey`); absent is fine.
    pub fn remove(&self, key: &str) -> Result<(), KeyringError> {
        let bytes = decode_key(key)?;
        {
            let mut keys = self.write();
            if keys.first().is_some_and(|k| k.bytes == bytes) {
                return Err(KeyringError::RemovePrimary);
            }
            keys.retain(|k| k.bytes != bytes);
        }
        self.save()
    }

    /// Appends `nonce ‖ AES-GCM(plaintext) ‖ tag` under the primary key to `out`.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
        let mut nonce = [0u8; NONCE_LEN];
        if self.rng.fill(&mut nonce).is_err() {
            // ring's system source does not fail once initialised; a fixed nonce would
            // break AES-GCM, so this packet is better lost than sent.
            tracing::error!("the system random source failed; dropping a gossip message");
            return;
        }
        let start = out.len();
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let keys = self.read();
        let Some(primary) = keys.first() else {
            out.truncate(start);
            return;
        };
        let body = &mut out[start + NONCE_LEN..];
        match primary.aead.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            body,
        ) {
            Ok(tag) => out.extend_from_slice(tag.as_ref()),
            Err(_) => out.truncate(start),
        }
    }

    /// The plaintext of `nonce ‖ ciphertext ‖ tag`, trying every key, primary first.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, body) = sealed.split_first_chunk::<NONCE_LEN>()?;
        if body.len() < TAG_LEN {
            return None;
        }
        let keys = self.read();
        keys.iter().find_map(|key| {
            let mut buf = body.to_vec();
            let plain = key
                .aead
                .open_in_place(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    &mut buf,
                )
                .ok()?
                .len();
            buf.truncate(plain);
            Some(buf)
        })
    }

    fn save(&self) -> Result<(), KeyringError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let encoded = self.list().keys;
        let file_error = |e: std::io::Error| KeyringError::File {
            path: path.clone(),
            message: e.to_string(),
        };
        let text = serde_json::to_vec_pretty(&encoded).map_err(|e| KeyringError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(file_error)?;
        }
        let temporary = path.with_extension("keyring.tmp");
        write_private(&temporary, &text).map_err(file_error)?;
        std::fs::rename(&temporary, path).map_err(file_error)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<SecretKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<SecretKey>> {
        self.keys.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes a file only its owner can read: it holds the keys.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // An existing file keeps its mode through `open`.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    }
}

/// How a pool encrypts: its keyring and Consul's `encrypt_verify_incoming` /
/// `encrypt_verify_outgoing` (both on by default; turned off only while encryption is
/// being rolled out to a running cluster).
#[derive(Debug, Clone)]
pub struct Encryption {
    pub keyring: Arc<Keyring>,
    /// Drop what arrives unencrypted.
    pub verify_incoming: bool,
    /// Encrypt what is sent.
    pub verify_outgoing: bool,
}

impl Encryption {
    pub fn new(keyring: Keyring) -> Encryption {
        Encryption {
            keyring: Arc::new(keyring),
            verify_incoming: true,
            verify_outgoing: true,
        }
    }

    /// An agent's pool: its keyring file in `<data_dir>/serf/` (`local.keyring` for the
    /// LAN pool, `remote.keyring` for the WAN pool, as Consul's), seeded by `encrypt` if
    /// absent; `None` (no encryption) without either.
    pub fn for_pool(
        data_dir: &Path,
        kind: PoolKind,
        encrypt: Option<&str>,
        verify_incoming: bool,
        verify_outgoing: bool,
    ) -> Result<Option<Encryption>, KeyringError> {
        let file = match kind {
            PoolKind::Lan => "local.keyring",
            PoolKind::Wan => "remote.keyring",
        };
        let keyring = Keyring::load(&data_dir.join("serf").join(file), encrypt)?;
        Ok(keyring.map(|keyring| Encryption {
            keyring: Arc::new(keyring),
            verify_incoming,
            verify_outgoing,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
    const K2: &str = "AAECAwQFBgcICQoLDA0ODw==";

    #[test]
    fn gossip_keys_are_16_or_32_base64_bytes() {
        assert_eq!(decode_key(K1).unwrap().len(), 32);
        assert_eq!(decode_key(K2).unwrap().len(), 16);
        let err = decode_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYX").unwrap_err();
        assert!(err.to_string().contains("AES-192"), "{err}");
        assert!(decode_key("abc")
            .unwrap_err()
            .to_string()
            .contains("invalid key"));
        assert!(decode_key("not base64!").is_err());
        assert_eq!(decode_key(&generate_key().unwrap()).unwrap().len(), 32);
    }

    #[test]
    fn gossip_sealed_bytes_open_with_any_installed_key_and_no_other() {
        let ring = Keyring::new(decode_key(K1).unwrap()).unwrap();
        let mut sealed = Vec::new();
        ring.seal(b"aad", b"member web-1", &mut sealed);
        assert_eq!(sealed.len(), "member web-1".len() + SEAL_LEN);
        assert!(!sealed.windows(5).any(|w| w == b"web-1"));
        assert_eq!(ring.open(b"aad", &sealed).unwrap(), b"member web-1");
        assert_eq!(
            ring.open(b"other", &sealed),
            None,
            "the associated data is bound"
        );
        let other = Keyring::new(decode_key(K2).unwrap()).unwrap();
        assert_eq!(other.open(b"aad", &sealed), None);
        other.install(K1).unwrap();
        assert_eq!(other.open(b"aad", &sealed).unwrap(), b"member web-1");
        let mut corrupt = sealed.clone();
        *corrupt.last_mut().unwrap() ^= 1;
        assert_eq!(ring.open(b"aad", &corrupt), None);
        assert_eq!(ring.open(b"aad", &sealed[..10]), None);
    }

    #[test]
    fn gossip_keyring_rotation_and_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serf").join("local.keyring");
        assert!(Keyring::load(&path, None).unwrap().is_none());
        let ring = Keyring::load(&path, Some(K1)).unwrap().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        ring.install(K2).unwrap();
        assert_eq!(
            ring.use_key("AAAAAAAAAAAAAAAAAAAAAA=="),
            Err(KeyringError::NotInstalled)
        );
        ring.use_key(K2).unwrap();
        assert_eq!(ring.remove(K2), Err(KeyringError::RemovePrimary));
        let on_disk: Vec<String> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(on_disk, [K2, K1]);
        ring.remove(K1).unwrap();
        // A restart reads the file; the seed no longer matters.
        let again = Keyring::load(&path, Some(K1)).unwrap().unwrap();
        assert_eq!(
            again.list(),
            KeyList {
                keys: vec![K2.into()],
                primary: K2.into()
            }
        );
        std::fs::write(&path, "[]").unwrap();
        let err = Keyring::load(&path, None).unwrap_err().to_string();
        assert!(
            err.contains("local.keyring") && err.contains("no key"),
            "{err}"
        );
    }
}
