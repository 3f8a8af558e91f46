//! Reading certificates, keys and CAs from the files the settings name. Every error
//! names the config key and the file, so `tls.https.cert_file: /etc/shoal/x.pem: No such
//! file or directory` says at once what to fix.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use super::settings::{ListenerTls, Sourced};
use super::TlsError;
use std::path::PathBuf;

fn file_error(file: &Sourced<PathBuf>, message: impl Into<String>) -> TlsError {
    TlsError::File {
        key: file.key.clone(),
        path: file.value.clone(),
        message: message.into(),
    }
}

fn read(file: &Sourced<PathBuf>) -> Result<Vec<u8>, TlsError> {
    read_path(file, &file.value)
}

fn read_path(file: &Sourced<PathBuf>, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        key: file.key.clone(),
        path: path.to_path_buf(),
        message: io_text(&e),
    })
}

fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The certificates of a PEM file: at least one.
pub fn certs(file: &Sourced<PathBuf>) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certs_in(file, &file.value)
}

fn certs_in(
    file: &Sourced<PathBuf>,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_path(file, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::File {
            key: file.key.clone(),
            path: path.to_path_buf(),
            message: format!("not a PEM certificate file: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::File {
            key: file.key.clone(),
            path: path.to_path_buf(),
            message: "no PEM certificate (BEGIN CERTIFICATE) found".into(),
        });
    }
    Ok(certs)
}

/// The private key of a PEM file: PKCS#8, SEC1 (`EC PRIVATE KEY`, as Consul writes them)
/// or PKCS#1.
pub fn key(file: &Sourced<PathBuf>) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(file)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        file_error(
            file,
            format!("no PEM private key (BEGIN PRIVATE KEY or EC PRIVATE KEY) found: {e}"),
        )
    })
}

/// The CAs of `ca_file` and of every file in `ca_path`, as Consul reads them. A file in
/// `ca_path` that holds no certificate is an error, not skipped: a CA quietly missing
/// is a refused cluster later.
pub fn roots(settings: &ListenerTls) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    let mut add = |file: &Sourced<PathBuf>, path: &Path| -> Result<(), TlsError> {
        for cert in certs_in(file, path)? {
            store.add(cert).map_err(|e| TlsError::File {
                key: file.key.clone(),
                path: path.to_path_buf(),
                message: format!("not a usable CA certificate: {e}"),
            })?;
        }
        Ok(())
    };
    if let Some(file) = &settings.ca_file {
        add(file, &file.value)?;
    }
    if let Some(dir) = &settings.ca_path {
        let entries = std::fs::read_dir(&dir.value).map_err(|e| file_error(dir, io_text(&e)))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            add(dir, &path)?;
        }
    }
    Ok(store)
}
