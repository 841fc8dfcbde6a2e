//! An RDB snapshot fetched over the network, as a replica gets it (and as
//! `redis-cli --rdb` does): AUTH, `REPLCONF rdb-only 1` (Redis 7: no
//! replication stream after the snapshot), `SYNC`; the server answers
//! `$<length>` and the snapshot's bytes, or, when it sends it without
//! touching its disk, `$EOF:<40-byte mark>` and the bytes up to that mark
//! (Redis replication protocol, "diskless replication"). No access to the
//! server's file system is needed, which managed services never give.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::jobs::upload::Chunks;
use crate::jobs::{JobError, Stage};

/// Where and how to connect, from a `redis://` / `rediss://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    /// `#insecure`: TLS without checking the certificate (as the redis
    /// crate reads it).
    pub insecure: bool,
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse `redis[s]://[user[:password]@]host[:port][/db][#insecure]`.
pub fn endpoint(url: &str) -> Result<Endpoint, JobError> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("rediss://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("redis://") {
        (false, r)
    } else {
        return Err(JobError::failed(Stage::Prepare, "the URL must start with redis:// or rediss://"));
    };
    let (rest, insecure) = match rest.split_once('#') {
        Some((r, frag)) => (r, frag == "insecure"),
        None => (rest, false),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((n, p)) => ((!n.is_empty()).then(|| unescape(n)), Some(unescape(p))),
            None => (None, Some(unescape(u))),
        },
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse().map_err(|_| JobError::failed(Stage::Prepare, "the port is not a number"))?,
        ),
        _ => (hostport.to_string(), 6379),
    };
    if host.is_empty() {
        return Err(JobError::failed(Stage::Prepare, "the URL has no host"));
    }
    Ok(Endpoint { tls, host, port, user, password, insecure })
}

/// A byte stream to the server, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The snapshot's bytes, as they arrive.
pub struct Rdb {
    io: Box<dyn Io>,
    /// Bytes read past the header.
    buffered: Vec<u8>,
    /// `$<length>`: bytes still to come.
    remaining: Option<u64>,
    /// `$EOF:<mark>`: the stream ends with the mark.
    mark: Option<Vec<u8>>,
    held: Vec<u8>,
    complete: bool,
}

async fn line(io: &mut Box<dyn Io>, buf: &mut Vec<u8>) -> Result<String, JobError> {
    loop {
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let l: Vec<u8> = buf.drain(..=i).collect();
            return Ok(String::from_utf8_lossy(&l).trim_end_matches(['\r', '\n']).to_string());
        }
        let mut chunk = [0u8; 4096];
        let n = io
            .read(&mut chunk)
            .await
            .map_err(|e| JobError::failed(Stage::Backup, format!("reading from Redis: {e}")))?;
        if n == 0 {
            return Err(JobError::failed(Stage::Backup, "Redis closed the connection"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

impl Rdb {
    /// Authenticate and ask for the snapshot; returns once its header came.
    pub async fn start(mut io: Box<dyn Io>, ep: &Endpoint) -> Result<Rdb, JobError> {
        let mut buf = Vec::new();
        if let Some(p) = &ep.password {
            let cmd = match &ep.user {
                Some(u) => resp(&["AUTH", u, p]),
                None => resp(&["AUTH", p]),
            };
            io.write_all(&cmd).await.map_err(|e| JobError::failed(Stage::Backup, format!("writing to Redis: {e}")))?;
            let l = line(&mut io, &mut buf).await?;
            if !l.starts_with('+') {
                return Err(JobError::failed(
                    Stage::Backup,
                    format!("AUTH was refused: {}", l.trim_start_matches('-')),
                ));
            }
        }
        // Redis 7 sends only the snapshot to an rdb-only replica; older
        // servers refuse the option and send the stream after it, which
        // this reader never reads.
        io.write_all(&resp(&["REPLCONF", "rdb-only", "1"]))
            .await
            .map_err(|e| JobError::failed(Stage::Backup, format!("writing to Redis: {e}")))?;
        let _ = line(&mut io, &mut buf).await?;
        io.write_all(&resp(&["SYNC"]))
            .await
            .map_err(|e| JobError::failed(Stage::Backup, format!("writing to Redis: {e}")))?;
        // Newlines keep the link alive while the server prepares the RDB.
        let header = loop {
            let l = line(&mut io, &mut buf).await?;
            if !l.is_empty() {
                break l;
            }
        };
        if let Some(err) = header.strip_prefix('-') {
            return Err(JobError::failed(Stage::Backup, format!("the server refused SYNC: {err} (a managed Redis may not allow it; its own snapshot export is the way there)")));
        }
        let Some(h) = header.strip_prefix('$') else {
            return Err(JobError::failed(Stage::Backup, format!("unexpected reply to SYNC: {header}")));
        };
        let (remaining, mark) = match h.strip_prefix("EOF:") {
            Some(m) if m.len() == 40 => (None, Some(m.as_bytes().to_vec())),
            Some(_) => return Err(JobError::failed(Stage::Backup, "malformed EOF mark in the reply to SYNC")),
            None => (
                Some(
                    h.parse::<u64>()
                        .map_err(|_| JobError::failed(Stage::Backup, format!("unexpected reply to SYNC: ${h}")))?,
                ),
                None,
            ),
        };
        Ok(Rdb { io, buffered: buf, remaining, mark, held: Vec::new(), complete: false })
    }
}

impl Chunks for Rdb {
    async fn next(&mut self) -> Result<Option<Bytes>, JobError> {
        if self.complete {
            return Ok(None);
        }
        let mut data = std::mem::take(&mut self.buffered);
        if data.is_empty() {
            let mut chunk = vec![0u8; 256 * 1024];
            let n = self
                .io
                .read(&mut chunk)
                .await
                .map_err(|e| JobError::failed(Stage::Backup, format!("reading the RDB: {e}")))?;
            if n == 0 {
                return Err(JobError::failed(Stage::Backup, "the connection closed before the whole RDB came"));
            }
            chunk.truncate(n);
            data = chunk;
        }
        if let Some(left) = self.remaining.as_mut() {
            let take = (data.len() as u64).min(*left) as usize;
            data.truncate(take);
            *left -= take as u64;
            if *left == 0 {
                self.complete = true;
            }
            return Ok(Some(Bytes::from(data)));
        }
        // EOF-marked: hold back the last 40 bytes until more arrive.
        let mark = self.mark.clone().unwrap_or_default();
        let mut all = std::mem::take(&mut self.held);
        all.extend_from_slice(&data);
        if all.ends_with(&mark) {
            all.truncate(all.len() - mark.len());
            self.complete = true;
            return Ok(Some(Bytes::from(all)));
        }
        let keep = all.len().saturating_sub(mark.len());
        self.held = all.split_off(keep);
        Ok(Some(Bytes::from(all)))
    }

    async fn finish(&mut self) -> Result<(), JobError> {
        if self.complete {
            Ok(())
        } else {
            Err(JobError::failed(Stage::Backup, "the RDB stream ended early"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_the_redis_crate_reads_them() {
        let e = endpoint("rediss://app:p%40ss@cache.internal:6380/2#insecure").expect("url");
        assert_eq!(
            e,
            Endpoint {
                tls: true,
                host: "cache.internal".into(),
                port: 6380,
                user: Some("app".into()),
                password: Some("p@ss".into()),
                insecure: true
            }
        );
        let e = endpoint("redis://:secret@127.0.0.1/0").expect("url");
        assert_eq!((e.user, e.password.as_deref(), e.port), (None, Some("secret"), 6379));
        assert!(endpoint("http://x").is_err());
    }

    #[tokio::test]
    async fn an_eof_marked_snapshot_is_read_up_to_its_mark() {
        let mark = "0123456789012345678901234567890123456789";
        let (client, mut server) = tokio::io::duplex(64);
        let feed = tokio::spawn(async move {
            let mut req = vec![0u8; 1024];
            // REPLCONF, then SYNC.
            let _ = server.read(&mut req).await;
            server.write_all(b"+OK\r\n").await.unwrap();
            let _ = server.read(&mut req).await;
            server.write_all(format!("\n\n$EOF:{mark}\r\nREDIS0011-payload-{mark}").as_bytes()).await.unwrap();
        });
        let ep = endpoint("redis://127.0.0.1").expect("url");
        let mut rdb = Rdb::start(Box::new(client), &ep).await.expect("start");
        let mut got = Vec::new();
        while let Some(b) = rdb.next().await.expect("read") {
            got.extend_from_slice(&b);
        }
        rdb.finish().await.expect("complete");
        assert_eq!(got, b"REDIS0011-payload-");
        feed.await.unwrap();
    }
}
