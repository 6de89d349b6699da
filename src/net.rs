//! The connection every protocol session owns: a TCP stream that may be
//! upgraded to TLS in place (STARTTLS, STLS), with a read buffer, bounded
//! line reads and the rule that an upgrade throws away anything the client
//! sent before the handshake finished; IMAP's COMPRESS=DEFLATE layers
//! `deflate.rs` over either. `proxy.rs` reads the PROXY protocol header a
//! load balancer puts before all that, on listeners that expect one.

mod deflate;
pub mod proxy;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A plain or TLS stream.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while an upgrade is in progress.
    Upgrading,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(io::Error::other("stream is being upgraded"))),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(io::Error::other("stream is being upgraded"))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
    }
}

/// What a line read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line without its CRLF (or LF).
    Complete(Vec<u8>),
    /// The line was longer than allowed; the rest of it was skipped.
    TooLong,
    /// The peer closed the connection.
    Eof,
}

/// A connection with its read buffer.
pub struct Connection {
    stream: Stream,
    buf: Vec<u8>,
    start: usize,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    tls: Option<crate::tls::TlsInfo>,
    /// COMPRESS=DEFLATE, once started.
    deflate: Option<Box<deflate::Deflate>>,
}

impl Connection {
    pub fn new(stream: TcpStream, peer: SocketAddr, local: SocketAddr) -> Connection {
        let _ = stream.set_nodelay(true);
        Connection {
            stream: Stream::Plain(stream),
            buf: Vec::with_capacity(4096),
            start: 0,
            peer,
            local,
            tls: None,
            deflate: None,
        }
    }

    /// Whether COMPRESS=DEFLATE is on.
    pub fn is_compressed(&self) -> bool {
        self.deflate.is_some()
    }

    /// Starts COMPRESS=DEFLATE (RFC 4978) after its OK was flushed: from
    /// now on both directions are raw deflate; bytes the client sent after
    /// the command, already buffered, are compressed ones.
    pub fn start_deflate(&mut self) -> io::Result<()> {
        if self.deflate.is_some() {
            return Err(io::Error::other("compression is already active"));
        }
        let mut z = Box::new(deflate::Deflate::new());
        let early = self.buf.split_off(self.start);
        z.inflate(&early, &mut self.buf)?;
        self.deflate = Some(z);
        Ok(())
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// "TLSv1.3" and the like, once TLS is on.
    pub fn tls_version(&self) -> Option<&'static str> {
        self.tls.map(|t| t.version)
    }

    /// The TLS version and cipher, once TLS is on.
    pub fn tls_info(&self) -> Option<crate::tls::TlsInfo> {
        self.tls
    }

    /// Runs the TLS handshake on this connection. Whatever the client
    /// pipelined before the handshake is discarded (RFC 3207 section 4.2).
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        self.buf.clear();
        self.start = 0;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            return Err(io::Error::other("TLS is already active"));
        };
        let tls = acceptor.accept(tcp).await?;
        let (_, state) = tls.get_ref();
        self.tls = Some(crate::tls::TlsInfo::of(state));
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// Bytes buffered but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Marks `n` buffered bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads more bytes into the buffer; Ok(0) at end of stream.
    /// Cancel-safe (IMAP IDLE waits on it and on mailbox events at once):
    /// only bytes actually read are ever appended.
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let Some(z) = self.deflate.as_mut() else {
            self.buf.reserve(16 * 1024);
            return self.stream.read_buf(&mut self.buf).await;
        };
        // Compressed: read until some text comes out (a read may end inside
        // a block); each read is inflated at once, so a cancel loses nothing.
        loop {
            z.raw.clear();
            if self.stream.read_buf(&mut z.raw).await? == 0 {
                return Ok(0);
            }
            let before = self.buf.len();
            let raw = std::mem::take(&mut z.raw);
            z.inflate(&raw, &mut self.buf)?;
            z.raw = raw;
            if self.buf.len() > before {
                return Ok(self.buf.len() - before);
            }
        }
    }

    /// Reads one line ending in LF (the CR before it, if any, is removed).
    /// Lines longer than `max` bytes are skipped and reported as `TooLong`.
    pub async fn read_line(&mut self, max: usize) -> io::Result<Line> {
        let mut skipping = false;
        loop {
            if let Some(pos) = self.buffered().iter().position(|&b| b == b'\n') {
                let mut line = self.buffered()[..pos].to_vec();
                self.consume(pos + 1);
                if skipping || line.len() > max {
                    return Ok(Line::TooLong);
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Line::Complete(line));
            }
            if self.buffered().len() > max {
                skipping = true;
                let n = self.buffered().len();
                self.consume(n);
            }
            if self.fill().await? == 0 {
                return Ok(Line::Eof);
            }
        }
    }

    /// Gives up the connection for a protocol that does its own buffering
    /// (HTTP); nothing may have been read through the buffer yet.
    pub fn into_stream(self) -> Stream {
        debug_assert!(self.buffered().is_empty());
        self.stream
    }

    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_buffered(bytes).await?;
        self.flush().await
    }

    /// Writes without flushing (for batching many lines).
    pub async fn write_buffered(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.deflate.as_mut() {
            None => self.stream.write_all(bytes).await,
            Some(z) => {
                z.deflate(bytes, false)?;
                self.write_deflated().await
            }
        }
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        if let Some(z) = self.deflate.as_mut() {
            z.deflate(&[], true)?;
            self.write_deflated().await?;
        }
        self.stream.flush().await
    }

    /// Writes out the compressed bytes made so far; each write takes only
    /// what went out, so a cancelled write loses nothing.
    async fn write_deflated(&mut self) -> io::Result<()> {
        let Some(z) = self.deflate.as_mut() else {
            return Ok(());
        };
        while !z.out.is_empty() {
            let n = self.stream.write(&z.out).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            z.out.drain(..n);
        }
        Ok(())
    }

    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}
