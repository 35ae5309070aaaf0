//! Bearer tokens: one validation path for Cognito and for local development.
//!
//! [`JwtValidator`] checks what Cognito's documentation asks a resource
//! server to check: an RS256 signature by a key from the issuer's JWKS
//! (`{issuer}/.well-known/jwks.json`, cached, refetched when a token names an
//! unknown `kid`), `iss`, `exp` and `nbf`, and `token_use` — an access token
//! must carry our `client_id`, an id token our client id as `aud`.
//! Anything else (`alg: none`, HS256, another key, an expired token) is 401.
//!
//! A token that passed is remembered (by its SHA-256) until it expires:
//! a client sends the same token on every request for an hour, and the RSA
//! check costs tens of microseconds where the lookup costs well under one.
//! Only tokens that passed every check are remembered, and a remembered one
//! is still refused once past its `exp`. As with any JWT, a token stays
//! good until it expires even if its signing key is rotated out of the JWKS.
//!
//! [`DevIssuer`] is what `evilent up` runs instead of Cognito: an RS256 key
//! kept in the data directory, a JWKS endpoint, and tokens shaped like
//! Cognito's access tokens (`cognito:groups` carries `admin`). Dev tokens
//! therefore go through exactly the same validator.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::problem::ApiError;

/// The client id of tokens minted by the dev issuer.
pub const DEV_CLIENT_ID: &str = "evilent-dev";
/// The group whose members may write anyone's resources.
pub const ADMIN_GROUP: &str = "admin";
/// How often an unknown `kid` may trigger a JWKS refetch.
const JWKS_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Seconds of clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 5;
/// Most validated tokens remembered; the memory is emptied when full.
const VERIFIED_MAX: usize = 4096;

/// Who is calling, once the token is validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user id (`sub`).
    pub sub: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

impl Principal {
    /// In the `admin` group.
    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == ADMIN_GROUP)
    }

    /// Whether this caller may write a resource owned by `owner`.
    pub fn may_write(&self, owner: &str) -> Result<(), ApiError> {
        if self.sub == owner || self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "only the owner or an admin may change this".into(),
            ))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))
    }
}

/// The caller's raw bearer token, to forward on calls to other services.
#[derive(Clone, Debug)]
pub struct BearerToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<BearerToken>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    token_use: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    email: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
}

/// Validates bearer tokens of one issuer and client.
pub struct JwtValidator {
    issuer: String,
    client_id: String,
    jwks_url: String,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    /// Tokens that passed, by SHA-256: their principal and `exp`.
    verified: std::sync::Mutex<HashMap<[u8; 32], (Principal, i64)>>,
}

fn unauthorized(m: &str) -> ApiError {
    ApiError::Unauthorized(m.to_owned())
}

impl JwtValidator {
    /// A validator of tokens from `issuer` (JWKS at `{issuer}/.well-known/jwks.json`) for `client_id`.
    pub fn new(issuer: &str, client_id: &str) -> Self {
        let issuer = issuer.trim_end_matches('/').to_owned();
        JwtValidator {
            jwks_url: format!("{issuer}/.well-known/jwks.json"),
            issuer,
            client_id: client_id.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            keys: RwLock::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
            verified: std::sync::Mutex::default(),
        }
    }

    /// The issuer this validator trusts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, ApiError> {
        if let Some(k) = self.keys.read().await.get(kid) {
            return Ok(k.clone());
        }
        // Unknown kid: the issuer may have rotated keys. Refetch, but not
        // more often than JWKS_REFRESH_MIN_INTERVAL, so junk tokens cannot
        // turn into a flood of requests to the issuer.
        let mut last = self.last_fetch.lock().await;
        if let Some(k) = self.keys.read().await.get(kid) {
            return Ok(k.clone());
        }
        if last.is_some_and(|t| t.elapsed() < JWKS_REFRESH_MIN_INTERVAL) {
            return Err(unauthorized("token signed by an unknown key"));
        }
        *last = Some(Instant::now());
        let jwks: Value = async {
            self.http
                .get(&self.jwks_url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        }
        .await
        .map_err(|e: reqwest::Error| {
            tracing::error!(url = %self.jwks_url, error = %e, "fetching JWKS failed");
            ApiError::Unavailable("cannot reach the token issuer's keys".into())
        })?;
        let mut keys = HashMap::new();
        for k in jwks["keys"].as_array().into_iter().flatten() {
            if let (Some(id), Some(n), Some(e)) =
                (k["kid"].as_str(), k["n"].as_str(), k["e"].as_str())
                && k["kty"] == "RSA"
                && let Ok(key) = DecodingKey::from_rsa_components(n, e)
            {
                keys.insert(id.to_owned(), key);
            }
        }
        let found = keys.get(kid).cloned();
        *self.keys.write().await = keys;
        found.ok_or_else(|| unauthorized("token signed by an unknown key"))
    }

    /// Validates `token` and returns its principal.
    pub async fn validate(&self, token: &str) -> Result<Principal, ApiError> {
        let digest: [u8; 32] =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())
                .as_ref()
                .try_into()
                .map_err(|_| ApiError::internal("SHA-256 digest of unexpected length"))?;
        let now = chrono::Utc::now().timestamp();
        let leeway = i64::try_from(LEEWAY_SECONDS).unwrap_or(0);
        {
            let mut verified = self
                .verified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match verified.get(&digest) {
                Some((principal, exp)) if now <= exp + leeway => return Ok(principal.clone()),
                Some(_) => {
                    verified.remove(&digest);
                    return Err(unauthorized("token expired"));
                }
                None => {}
            }
        }
        let (principal, exp) = self.check(token).await?;
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(digest, (principal.clone(), exp));
        Ok(principal)
    }

    /// Every check of a token, with the RSA signature.
    async fn check(&self, token: &str) -> Result<(Principal, i64), ApiError> {
        let header = decode_header(token).map_err(|_| unauthorized("malformed token"))?;
        if header.alg != Algorithm::RS256 {
            return Err(unauthorized("tokens must be signed with RS256"));
        }
        let kid = header.kid.ok_or_else(|| unauthorized("token has no kid"))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.validate_aud = false; // checked below, by token_use
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        let data = decode::<Claims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            unauthorized(match e.kind() {
                K::ExpiredSignature => "token expired",
                K::ImmatureSignature => "token not valid yet",
                K::InvalidIssuer => "token from another issuer",
                K::InvalidSignature => "token signature is invalid",
                K::MissingRequiredClaim(_) => "token lacks a required claim",
                _ => "invalid token",
            })
        })?;
        let c = data.claims;
        let client_ok = match c.token_use.as_deref() {
            Some("access") => c.client_id.as_deref() == Some(self.client_id.as_str()),
            Some("id") => match &c.aud {
                Some(Value::String(a)) => *a == self.client_id,
                Some(Value::Array(a)) => a
                    .iter()
                    .any(|x| x.as_str() == Some(self.client_id.as_str())),
                _ => false,
            },
            _ => return Err(unauthorized("token_use must be access or id")),
        };
        if !client_ok {
            return Err(unauthorized("token issued to another client"));
        }
        let principal = Principal {
            sub: c.sub,
            email: c.email,
            groups: c.groups,
        };
        Ok((principal, c.exp))
    }
}

/// Middleware: requires a valid bearer token and puts the [`Principal`]
/// (and the raw token) into the request's extensions.
pub async fn require_auth(
    State(validator): State<Arc<JwtValidator>>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("a bearer token is required"))?
        .to_owned();
    let principal = validator.validate(&token).await?;
    req.extensions_mut().insert(principal);
    req.extensions_mut().insert(BearerToken(token));
    Ok(next.run(req).await)
}

/// What a dev token says.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub sub: String,
    pub email: Option<String>,
    pub admin: bool,
    pub ttl: Duration,
}

/// The local stand-in for Cognito: an RS256 key, its JWKS, and token minting.
pub struct DevIssuer {
    key: KeyPair,
    kid: String,
    issuer: String,
}

impl DevIssuer {
    /// Loads the key kept at `key_path`, or creates and keeps a new one.
    pub fn load_or_create(key_path: &Path, issuer: &str) -> std::io::Result<Self> {
        use aws_lc_rs::encoding::AsDer;
        let key = match std::fs::read(key_path) {
            Ok(der) => KeyPair::from_pkcs8(&der).map_err(|e| {
                std::io::Error::other(format!("dev key {}: {e}", key_path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = KeyPair::generate(KeySize::Rsa2048)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let der = key
                    .as_der()
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                if let Some(dir) = key_path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                // Write aside, then link into place: the link fails if another
                // process got there first, and then its key is the key.
                let aside = key_path.with_extension(format!("tmp-{}", std::process::id()));
                std::fs::write(&aside, der.as_ref())?;
                let linked = std::fs::hard_link(&aside, key_path);
                let _ = std::fs::remove_file(&aside);
                match linked {
                    Ok(()) => key,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let der = std::fs::read(key_path)?;
                        KeyPair::from_pkcs8(&der)
                            .map_err(|e| std::io::Error::other(format!("dev key: {e}")))?
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        Ok(Self::from_key(key, issuer))
    }

    /// A fresh key that lives only in memory (tests).
    pub fn ephemeral(issuer: &str) -> Self {
        #[allow(clippy::expect_used)]
        let key = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        Self::from_key(key, issuer)
    }

    fn from_key(key: KeyPair, issuer: &str) -> Self {
        let n = key
            .public_key()
            .modulus()
            .big_endian_without_leading_zero()
            .to_vec();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &n);
        let kid = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        DevIssuer {
            key,
            kid,
            issuer: issuer.trim_end_matches('/').to_owned(),
        }
    }

    /// The issuer URL written into tokens (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Value {
        let pk = self.key.public_key();
        json!({ "keys": [{
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
            "n": B64.encode(pk.modulus().big_endian_without_leading_zero()),
            "e": B64.encode(pk.exponent().big_endian_without_leading_zero()),
        }]})
    }

    /// A Cognito-shaped access token.
    pub fn mint(&self, req: &TokenRequest) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "sub": req.sub, "iss": self.issuer, "token_use": "access", "client_id": DEV_CLIENT_ID,
            "iat": now, "nbf": now, "exp": now + i64::try_from(req.ttl.as_secs()).unwrap_or(3600),
            "jti": uuid::Uuid::now_v7().to_string(),
            "cognito:groups": if req.admin { vec![ADMIN_GROUP] } else { Vec::new() },
        });
        if let Some(email) = &req.email {
            claims["email"] = json!(email);
        }
        self.sign(&claims)
    }

    /// Signs arbitrary claims (tests use it to build tokens that must be refused).
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let message = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        // Signing with a valid key into a buffer of the modulus' length cannot fail.
        let _ = self.key.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &rng,
            message.as_bytes(),
            &mut signature,
        );
        format!("{message}.{}", B64.encode(signature))
    }

    /// `GET /.well-known/jwks.json` (and `/health`).
    pub fn router(self: Arc<Self>) -> Router {
        let jwks = self.jwks();
        Router::new()
            .route(
                "/.well-known/jwks.json",
                get(move || async move { Json(jwks) }),
            )
            .route("/health", get(|| async { "ok" }))
    }
}
