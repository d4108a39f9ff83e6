//! An X.509 v1 client certificate, made in Rust, presented by a TLS client.
//!
//! rcgen writes only v3 certificates, so the leaf is made as v3 by rcgen and turned into
//! v1 here, as `openssl x509 -req` makes one by default: the `[0]` version and the `[3]`
//! extensions are taken out of the TBSCertificate, its issuer becomes the CA's subject,
//! and the CA's key signs it (both keys are rcgen's default, ECDSA P-256 with SHA-256).
//! rustls clients refuse to load a v1 certificate through `with_client_auth_cert` (it
//! parses the leaf), so the client hands its `CertifiedKey` over through a resolver.
use std::{net::SocketAddr, path::Path, sync::Arc};

use rcgen::{CertificateParams, DnType, KeyPair, SigningKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::{
    client::ResolvesClientCert,
    crypto::aws_lc_rs,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName},
    sign::CertifiedKey,
    ClientConfig, RootCertStore, SignatureScheme,
};

/// DER tags of the TBSCertificate fields a v1 certificate leaves out.
const VERSION: u8 = 0xa0;
const EXTENSIONS: u8 = 0xa3;
const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;

/// A v1 certificate for `CN=legacy-v1` signed by the CA in `dir` (ca.pem, ca.key), and
/// its key.
pub fn v1_certificate(dir: &Path) -> (CertificateDer<'static>, KeyPair) {
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).unwrap()).unwrap();
    let ca = CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap();
    let ca_subject = v1_fields(&ca)[4];
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "legacy-v1");
    let v3 = params.self_signed(&key).unwrap();
    let [_, (_, algorithm), _] = elements(content(v3.der()))[..] else {
        panic!("a certificate is three elements");
    };
    // serial, signature algorithm, issuer, validity, subject, public key
    let mut fields = v1_fields(v3.der());
    fields[2] = ca_subject;
    let v1_tbs = tlv(SEQUENCE, &fields.concat());
    let signature = ca_key.sign(&v1_tbs).unwrap();
    let bits = [&[0u8][..], &signature].concat();
    let body = [v1_tbs, algorithm.to_vec(), tlv(BIT_STRING, &bits)].concat();
    (CertificateDer::from(tlv(SEQUENCE, &body)), key)
}

/// The TBSCertificate fields of `cert` that a v1 certificate has (each whole).
fn v1_fields(cert: &[u8]) -> Vec<&[u8]> {
    let [(_, tbs), ..] = elements(content(cert))[..] else {
        panic!("a certificate starts with its TBSCertificate");
    };
    elements(content(tbs))
        .into_iter()
        .filter(|(tag, _)| ![VERSION, EXTENSIONS].contains(tag))
        .map(|(_, whole)| whole)
        .collect()
}

/// Connects to `addr` twice presenting the v1 certificate, each time until the gateway
/// ends the connection (it refuses the certificate).
pub async fn v1_handshakes(dir: &Path, addr: SocketAddr) {
    let (cert, key) = v1_certificate(dir);
    let provider = Arc::new(aws_lc_rs::default_provider());
    let signing_key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .unwrap();
    let identity = Arc::new(CertifiedKey::new(vec![cert], signing_key));
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap())
        .unwrap();
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(Present(identity)));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    for _ in 0..2 {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        // TLS 1.3: the client's handshake ends before the server judges its certificate;
        // the refusal arrives as an alert on the first read.
        if let Ok(mut tls) = connector.connect(name, tcp).await {
            let _ = tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
            let mut buf = [0u8; 64];
            while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
        }
    }
}

/// Presents one fixed certificate whatever the server asks.
#[derive(Debug)]
struct Present(Arc<CertifiedKey>);

impl ResolvesClientCert for Present {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The content of the DER element `der` (one tag byte, then its length).
fn content(der: &[u8]) -> &[u8] {
    let (_, content, _) = split(der);
    content
}

/// The elements inside a SEQUENCE's content: each one's tag and whole encoding.
fn elements(mut der: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while !der.is_empty() {
        let (header, content, rest) = split(der);
        out.push((der[0], &der[..header + content.len()]));
        der = rest;
    }
    out
}

/// The header length, the content and what follows one DER element.
fn split(der: &[u8]) -> (usize, &[u8], &[u8]) {
    let (len, header) = match der[1] {
        n if n < 0x80 => (usize::from(n), 2),
        n => {
            let bytes = usize::from(n & 0x7f);
            let len = der[2..2 + bytes]
                .iter()
                .fold(0, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + bytes)
        }
    };
    (header, &der[header..header + len], &der[header + len..])
}

/// One DER element: `tag`, its length, `content`.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}
