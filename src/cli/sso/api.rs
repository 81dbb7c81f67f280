//! The two APIs the client speaks, as any IAM Identity Center client does: SSO-OIDC
//! (RegisterClient, StartDeviceAuthorization, CreateToken) and the portal API
//! (GetRoleCredentials), plus the console federation endpoint. Errors come back as [`ApiError`]
//! with the AWS error type from `x-amzn-ErrorType`.

use serde::Deserialize;
use serde_json::{json, Value};

/// An error answer of either API.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The AWS error type (`SlowDownException`, `UnauthorizedException`…), or `HttpError`.
    pub code: String,
    /// HTTP status.
    pub status: u16,
    /// The server's message.
    pub message: String,
}

/// Where the two APIs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// SSO-OIDC base URL.
    pub oidc: String,
    /// Portal API base URL (also the console federation endpoint).
    pub portal: String,
}

impl Endpoints {
    /// The endpoints for `start_url`: `override_url` when given, else the SDKs' variables
    /// (`AWS_ENDPOINT_URL_SSO_OIDC`, `AWS_ENDPOINT_URL_SSO`, then `AWS_ENDPOINT_URL`), else the
    /// start URL's origin (rolegate serves both APIs there).
    pub fn resolve(
        start_url: &str,
        override_url: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let origin = url::Url::parse(start_url)
            .map_err(|e| anyhow::anyhow!("start URL {start_url:?}: {e}"))?
            .origin()
            .ascii_serialization();
        let pick = |specific: &str| -> String {
            override_url
                .map(str::to_string)
                .or_else(|| env(specific).filter(|v| !v.is_empty()))
                .or_else(|| env("AWS_ENDPOINT_URL").filter(|v| !v.is_empty()))
                .unwrap_or_else(|| origin.clone())
                .trim_end_matches('/')
                .to_string()
        };
        Ok(Self {
            oidc: pick("AWS_ENDPOINT_URL_SSO_OIDC"),
            portal: pick("AWS_ENDPOINT_URL_SSO"),
        })
    }
}

/// The HTTP side.
pub struct Api {
    http: reqwest::Client,
    /// Where the APIs are.
    pub endpoints: Endpoints,
}

/// A RegisterClient answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// Secret expiry (Unix seconds).
    pub client_secret_expires_at: i64,
    /// Where PKCE sign-ins are approved.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
}

/// A StartDeviceAuthorization answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceAuthorization {
    /// The device code to poll with.
    pub device_code: String,
    /// The code the person confirms.
    pub user_code: String,
    /// Where the person goes.
    pub verification_uri: String,
    /// The same with the code filled in.
    pub verification_uri_complete: String,
    /// Seconds until the codes expire.
    pub expires_in: i64,
    /// Least seconds between polls.
    #[serde(default = "default_interval")]
    pub interval: i64,
}

fn default_interval() -> i64 {
    5
}

/// A CreateToken answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    /// The access token.
    pub access_token: String,
    /// Seconds it lasts.
    pub expires_in: i64,
    /// The refresh token, if any.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// Role credentials (GetRoleCredentials).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token.
    pub session_token: String,
    /// Expiry, epoch milliseconds.
    pub expiration: i64,
}

impl Api {
    /// A client for `endpoints` (rustls, no redirects, 30 s per request).
    pub fn new(endpoints: Endpoints) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("rolegate-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, endpoints })
    }

    async fn answer(resp: reqwest::Response) -> Result<Value, ApiError> {
        let status = resp.status().as_u16();
        let kind = resp
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or(v).to_string());
        let text = resp.text().await.map_err(|e| ApiError {
            code: "HttpError".into(),
            status,
            message: e.to_string(),
        })?;
        let body: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let message = body
            .get("error_description")
            .or_else(|| body.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| body.to_string());
        Err(ApiError {
            code: kind.unwrap_or_else(|| format!("HTTP {status}")),
            status,
            message,
        })
    }

    fn http_error(e: reqwest::Error) -> ApiError {
        ApiError {
            code: "HttpError".into(),
            status: 0,
            message: e.to_string(),
        }
    }

    async fn oidc(&self, path: &str, body: Value) -> Result<Value, ApiError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.endpoints.oidc))
            .json(&body)
            .send()
            .await
            .map_err(Self::http_error)?;
        Self::answer(resp).await
    }

    fn parse<T: for<'de> Deserialize<'de>>(v: Value) -> Result<T, ApiError> {
        serde_json::from_value(v).map_err(|e| ApiError {
            code: "BadAnswer".into(),
            status: 200,
            message: format!("unexpected answer: {e}"),
        })
    }

    /// RegisterClient of a public client.
    pub async fn register(
        &self,
        grants: &[&str],
        redirect_uris: &[&str],
        issuer_url: &str,
    ) -> Result<Registration, ApiError> {
        let mut body = json!({
            "clientName": "rolegate-cli",
            "clientType": "public",
            "scopes": [super::SCOPE],
            "grantTypes": grants,
            "issuerUrl": issuer_url,
        });
        if !redirect_uris.is_empty() {
            body["redirectUris"] = json!(redirect_uris);
        }
        Self::parse(self.oidc("/client/register", body).await?)
    }

    /// StartDeviceAuthorization.
    pub async fn start_device(
        &self,
        client_id: &str,
        client_secret: &str,
        start_url: &str,
    ) -> Result<DeviceAuthorization, ApiError> {
        Self::parse(
            self.oidc(
                "/device_authorization",
                json!({"clientId": client_id, "clientSecret": client_secret, "startUrl": start_url}),
            )
            .await?,
        )
    }

    /// CreateToken with `grant` and its members.
    pub async fn create_token(
        &self,
        client_id: &str,
        client_secret: &str,
        grant: &str,
        members: Value,
    ) -> Result<Token, ApiError> {
        let mut body =
            json!({"clientId": client_id, "clientSecret": client_secret, "grantType": grant});
        if let (Some(b), Value::Object(m)) = (body.as_object_mut(), members) {
            b.extend(m);
        }
        Self::parse(self.oidc("/token", body).await?)
    }

    /// GetRoleCredentials.
    pub async fn role_credentials(
        &self,
        access_token: &str,
        account: &str,
        role: &str,
    ) -> Result<RoleCredentials, ApiError> {
        let resp = self
            .http
            .get(format!("{}/federation/credentials", self.endpoints.portal))
            .query(&[("role_name", role), ("account_id", account)])
            .header("x-amz-sso_bearer_token", access_token)
            .send()
            .await
            .map_err(Self::http_error)?;
        let v = Self::answer(resp).await?;
        Self::parse(v.get("roleCredentials").cloned().unwrap_or(Value::Null))
    }

    /// Logout.
    pub async fn logout(&self, access_token: &str) -> Result<(), ApiError> {
        let resp = self
            .http
            .post(format!("{}/logout", self.endpoints.portal))
            .header("x-amz-sso_bearer_token", access_token)
            .send()
            .await
            .map_err(Self::http_error)?;
        Self::answer(resp).await.map(|_| ())
    }

    /// A console sign-in URL for role credentials: `getSigninToken`, then the `login` URL.
    pub async fn console_url(&self, c: &RoleCredentials) -> Result<String, ApiError> {
        let session = json!({
            "sessionId": c.access_key_id,
            "sessionKey": c.secret_access_key,
            "sessionToken": c.session_token,
        })
        .to_string();
        let base = format!("{}/federation", self.endpoints.portal);
        let resp = self
            .http
            .get(&base)
            .query(&[("Action", "getSigninToken"), ("Session", session.as_str())])
            .send()
            .await
            .map_err(Self::http_error)?;
        let v = Self::answer(resp).await?;
        let token = v
            .get("SigninToken")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError {
                code: "BadAnswer".into(),
                status: 200,
                message: "no SigninToken in the answer".into(),
            })?;
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "login")
            .append_pair("Issuer", "rolegate-cli")
            .append_pair("Destination", &format!("{}/console", self.endpoints.portal))
            .append_pair("SigninToken", token)
            .finish();
        Ok(format!("{base}?{q}"))
    }
}

#[cfg(test)]
mod tests {
    use super::Endpoints;

    #[test]
    fn endpoints_follow_the_sdk_variables_then_the_start_url() {
        let none = |_: &str| None;
        let e = Endpoints::resolve("https://sso.example.com/start", None, &none).unwrap();
        assert_eq!(e.oidc, "https://sso.example.com");
        assert_eq!(e.portal, "https://sso.example.com");
        let env = |k: &str| match k {
            "AWS_ENDPOINT_URL" => Some("http://all:1/".to_string()),
            "AWS_ENDPOINT_URL_SSO" => Some("http://portal:2".to_string()),
            _ => None,
        };
        let e = Endpoints::resolve("https://sso.example.com/start", None, &env).unwrap();
        assert_eq!(
            (e.oidc.as_str(), e.portal.as_str()),
            ("http://all:1", "http://portal:2")
        );
        let e =
            Endpoints::resolve("https://sso.example.com/start", Some("http://x:3"), &env).unwrap();
        assert_eq!(
            (e.oidc.as_str(), e.portal.as_str()),
            ("http://x:3", "http://x:3")
        );
        assert!(Endpoints::resolve("not a url", None, &none).is_err());
    }
}
