//! Client-side encryption of backups with age (the `age` crate, the file
//! format of the `age` tool: a stored backup decrypts with stock `age -d
//! -i KEY`). The stream is encrypted before it leaves the process, in
//! age's 64 KiB chunks, so memory stays bounded and no plaintext is
//! written anywhere; the SHA-256 sidecar is of the stored (encrypted)
//! object. Identities are read from a file whose contents are never
//! printed.

use std::cell::RefCell;
use std::io::Write;
use std::path::Path;
use std::rc::Rc;
use std::str::FromStr;

use bytes::Bytes;

use super::upload::Chunks;
use super::{JobError, Stage};

/// What every age file begins with (age-encryption.org/v1 specification):
/// the audit reads these bytes to tell an encrypted backup.
pub const HEADER: &[u8] = b"age-encryption.org/v1\n";

/// The object key's suffix for an encrypted backup (`…dump.age`).
pub const EXT: &str = ".age";

/// A recipient as written in the policy: an X25519 recipient (`age1…`) or
/// an SSH public key (`ssh-ed25519 …`, `ssh-rsa …`).
pub fn recipient(s: &str) -> Result<Box<dyn age::Recipient + Send>, JobError> {
    if let Ok(r) = age::x25519::Recipient::from_str(s) {
        return Ok(Box::new(r));
    }
    match age::ssh::Recipient::from_str(s) {
        Ok(r) => Ok(Box::new(r)),
        Err(_) => Err(JobError::failed(
            Stage::Prepare,
            "an age recipient (age1…) or an SSH public key (ssh-ed25519 …, ssh-rsa …)",
        )),
    }
}

/// The identities in `path` (an age identity file, as age-keygen writes
/// it, or an unencrypted SSH private key). Errors name the file, never its
/// contents.
pub fn identities(path: &Path) -> Result<Vec<Box<dyn age::Identity>>, JobError> {
    let shown = path.display();
    let text = std::fs::read(path)
        .map_err(|e| JobError::failed(Stage::Decrypt, format!("the identity file {shown} cannot be read: {e}")))?;
    if let Ok(file) = age::IdentityFile::from_buffer(&text[..]) {
        if let Ok(ids) = file.into_identities() {
            if !ids.is_empty() {
                return Ok(ids);
            }
        }
    }
    match age::ssh::Identity::from_buffer(&text[..], Some(shown.to_string())) {
        Ok(age::ssh::Identity::Unencrypted(k)) => Ok(vec![Box::new(age::ssh::Identity::Unencrypted(k))]),
        Ok(_) => Err(JobError::failed(
            Stage::Decrypt,
            format!("the identity file {shown} holds a passphrase-protected SSH key: give an unencrypted identity"),
        )),
        Err(_) => Err(JobError::failed(
            Stage::Decrypt,
            format!("{shown} holds no age identity (AGE-SECRET-KEY-1…) or SSH private key"),
        )),
    }
}

/// A sink the encryptor writes into and the upload drains.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `inner`'s bytes, encrypted to `recipients` on the way.
pub struct Encrypting<C> {
    inner: C,
    out: Shared,
    writer: Option<age::stream::StreamWriter<Shared>>,
}

impl<C: Chunks> Encrypting<C> {
    pub fn new(inner: C, recipients: &[String]) -> Result<Self, JobError> {
        let parsed: Vec<Box<dyn age::Recipient + Send>> =
            recipients.iter().map(|r| recipient(r)).collect::<Result<_, _>>()?;
        let enc = age::Encryptor::with_recipients(parsed.iter().map(|r| r.as_ref() as &dyn age::Recipient))
            .map_err(|e| JobError::failed(Stage::Encrypt, format!("age: {e}")))?;
        let out = Shared::default();
        let writer = enc.wrap_output(out.clone()).map_err(|e| JobError::failed(Stage::Encrypt, format!("age: {e}")))?;
        Ok(Encrypting { inner, out, writer: Some(writer) })
    }

    fn drain(&self) -> Option<Bytes> {
        let taken = std::mem::take(&mut *self.out.0.borrow_mut());
        (!taken.is_empty()).then(|| Bytes::from(taken))
    }
}

impl<C: Chunks> Chunks for Encrypting<C> {
    async fn next(&mut self) -> Result<Option<Bytes>, JobError> {
        loop {
            if let Some(b) = self.drain() {
                return Ok(Some(b));
            }
            let Some(w) = self.writer.as_mut() else { return Ok(None) };
            match self.inner.next().await? {
                Some(chunk) => {
                    w.write_all(&chunk).map_err(|e| JobError::failed(Stage::Encrypt, format!("age: {e}")))?
                }
                None => {
                    let w = self.writer.take().expect("writer");
                    w.finish().map_err(|e| JobError::failed(Stage::Encrypt, format!("age: {e}")))?;
                }
            }
        }
    }
    async fn finish(&mut self) -> Result<(), JobError> {
        self.inner.finish().await
    }
}

/// The plaintext of the age stream `input`, opened with `ids`: the header
/// is read and a key found before this returns, so an identity that is not
/// a recipient fails here, before anything is restored.
pub fn decrypting<R: std::io::Read>(
    input: R,
    ids: &[Box<dyn age::Identity>],
) -> Result<age::stream::StreamReader<std::io::BufReader<R>>, JobError> {
    let d = age::Decryptor::new_buffered(std::io::BufReader::new(input))
        .map_err(|e| JobError::failed(Stage::Decrypt, format!("the backup is not an age file: {e}")))?;
    d.decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity)).map_err(|e| JobError::failed(Stage::Decrypt, match e {
        age::DecryptError::NoMatchingKeys => {
            "the identity given with `decrypt_with` is not a recipient of this backup (no matching key): nothing was restored".to_string()
        }
        other => format!("decrypting the backup: {other}"),
    }))
}

/// Decrypt the age file `from` into `to` with `ids`; a file none of them
/// opens is an error that says so (nothing is written then).
pub fn decrypt_file(from: &Path, to: &Path, ids: &[Box<dyn age::Identity>]) -> Result<(), JobError> {
    let input =
        std::fs::File::open(from).map_err(|e| JobError::failed(Stage::Decrypt, format!("{}: {e}", from.display())))?;
    let mut reader = decrypting(input, ids)?;
    let mut out =
        std::fs::File::create(to).map_err(|e| JobError::failed(Stage::Decrypt, format!("{}: {e}", to.display())))?;
    std::io::copy(&mut reader, &mut out)
        .map_err(|e| JobError::failed(Stage::Decrypt, format!("decrypting the backup: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pieces(Vec<&'static [u8]>, bool);

    impl Chunks for Pieces {
        async fn next(&mut self) -> Result<Option<Bytes>, JobError> {
            Ok((!self.0.is_empty()).then(|| Bytes::from_static(self.0.remove(0))))
        }
        async fn finish(&mut self) -> Result<(), JobError> {
            self.1 = true;
            Ok(())
        }
    }

    #[test]
    fn a_stream_encrypts_to_an_age_file_only_its_identity_opens() {
        let id = age::x25519::Identity::generate();
        let to = id.to_public().to_string();
        let mut e = Encrypting::new(Pieces(vec![b"hello ", b"world"], false), &[to]).expect("encryptor");
        let mut stored = Vec::new();
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("rt");
        rt.block_on(async {
            while let Some(b) = e.next().await.expect("next") {
                stored.extend_from_slice(&b);
            }
            e.finish().await.expect("finish");
        });
        assert!(e.inner.1, "the producer was asked");
        assert!(stored.starts_with(HEADER), "an age file");
        assert!(!stored.windows(5).any(|w| w == b"hello"), "no plaintext");
        let dir = tempfile::tempdir().expect("dir");
        let (enc, dec) = (dir.path().join("b.age"), dir.path().join("b"));
        std::fs::write(&enc, &stored).expect("write");
        let ids: Vec<Box<dyn age::Identity>> = vec![Box::new(id)];
        decrypt_file(&enc, &dec, &ids).expect("decrypt");
        assert_eq!(std::fs::read(&dec).expect("read"), b"hello world");
        let other: Vec<Box<dyn age::Identity>> = vec![Box::new(age::x25519::Identity::generate())];
        let e = decrypt_file(&enc, &dir.path().join("c"), &other).unwrap_err();
        assert!(e.to_string().contains("not a recipient of this backup"), "{e}");
        assert_eq!(e.stage(), Stage::Decrypt);
        assert!(recipient("age1notakey").is_err());
    }
}
