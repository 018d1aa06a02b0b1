//! The token signing key: Ed25519, kept as a PKCS#8 PEM file under the data
//! dir (generated on first start) or supplied by the operator.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::token::Claims;
use crate::wire::{self, PublicKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the signing key {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the signing key {path} is not an Ed25519 PKCS#8 PEM key")]
    Malformed { path: String },
    #[error("cannot generate a signing key")]
    Generate,
    #[error("cannot sign a token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public: PublicKey,
}

impl SigningKey {
    /// Loads the key at `path`, generating it first if the file does not exist.
    pub fn load_or_generate(path: &Path) -> Result<SigningKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let der = if path.exists() {
            let pem = std::fs::read_to_string(path).map_err(io)?;
            pem_to_der(&pem).ok_or_else(|| KeyError::Malformed {
                path: path.display().to_string(),
            })?
        } else {
            let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generate)?;
            let der = pair
                .to_pkcs8()
                .map_err(|_| KeyError::Generate)?
                .as_ref()
                .to_vec();
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            write_private(path, &der_to_pem(&der)).map_err(io)?;
            der
        };
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|_| KeyError::Malformed {
                path: path.display().to_string(),
            })?;
        // Re-encode as PKCS#8 v2 so keys made by other tools (often v1) sign too.
        let der = pair.to_pkcs8().map_err(|_| KeyError::Generate)?;
        let public_raw = pair.public_key().as_ref();
        let kid = key_id(public_raw);
        Ok(SigningKey {
            encoding: EncodingKey::from_ed_der(der.as_ref()),
            public: PublicKey {
                v: wire::VERSION,
                kid: kid.clone(),
                alg: "EdDSA".to_string(),
                x: URL_SAFE_NO_PAD.encode(public_raw),
            },
            kid,
        })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// The key id: the first 8 bytes of the public key's SHA-256, in hex.
fn key_id(public_key: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public_key);
    crate::hex::encode(&digest.as_ref()[..8])
}

fn der_to_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    let (_, rest) = pem.split_once(BEGIN)?;
    let (body, _) = rest.split_once("-----END PRIVATE KEY-----")?;
    let body: String = body.split_whitespace().collect();
    STANDARD.decode(body).ok()
}

/// Writes a secret readable by the owner only.
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(content.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_reloaded_with_the_same_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth/key.pem");
        let first = SigningKey::load_or_generate(&path).unwrap();
        let second = SigningKey::load_or_generate(&path).unwrap();
        assert_eq!(first.public().kid, second.public().kid);
        assert_eq!(first.public().x, second.public().x);
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        for content in [
            "hello",
            // The end marker before the start marker.
            "-----END PRIVATE KEY-----\n-----BEGIN PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----",
        ] {
            std::fs::write(&path, content).unwrap();
            assert!(
                matches!(
                    SigningKey::load_or_generate(&path),
                    Err(KeyError::Malformed { .. })
                ),
                "{content:?}"
            );
        }
    }
}
