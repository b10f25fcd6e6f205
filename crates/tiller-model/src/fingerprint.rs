//! SHA-256 fingerprints of model and tokenizer files.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::ModelError;

/// Computes the SHA-256 of a file, reading it in 1 MiB chunks, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let io_error = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        };
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc.txt");
        std::fs::write(&path, b"abc").unwrap();
        // FIPS 180-2, appendix B.1: SHA-256("abc").
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sha256_spans_several_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        // 2.5 MiB so the loop runs over three reads.
        let contents: Vec<u8> = (0..(5usize << 19)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &contents).unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            hex::encode(Sha256::digest(&contents))
        );
    }

    #[test]
    fn sha256_of_missing_file_is_io_error() {
        let error = sha256_file(Path::new("/nonexistent/tiller/model.gguf")).unwrap_err();
        assert!(matches!(error, ModelError::Io { .. }), "{error}");
    }
}
