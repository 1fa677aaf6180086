//! A browser without JavaScript for the console's tests: keeps its cookies by hand, never
//! follows redirects.

use reqwest::header::{self, HeaderMap};

use super::TestServer;

/// One browser: its own cookies and, if set, the language it asks for.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    /// Its cookies, name and value.
    pub cookies: Vec<(String, String)>,
    /// Its `Accept-Language`.
    pub lang: Option<&'static str>,
}

/// An answer.
pub struct Page {
    /// HTTP status.
    pub status: u16,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body, as text (invalid UTF-8 replaced).
    pub body: String,
    /// Its body's bytes, as sent.
    pub bytes: Vec<u8>,
}

impl Page {
    /// `Location`, or empty.
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

impl Browser {
    /// A browser with no cookies, for `server`.
    pub fn new(server: &TestServer) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
            cookies: Vec::new(),
            lang: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for set in headers.get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !attributes.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let mut req = req.header(header::COOKIE, self.cookie_header());
        if let Some(lang) = self.lang {
            req = req.header(header::ACCEPT_LANGUAGE, lang);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        self.keep_cookies(&headers);
        let bytes = resp.bytes().await.unwrap().to_vec();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        }
    }

    /// GETs `path` and keeps the body's bytes apart (a file, a blob).
    pub async fn download(&mut self, path: &str) -> (Page, Vec<u8>) {
        let page = self.get(path).await;
        let bytes = page.bytes.clone();
        (page, bytes)
    }

    /// GETs the byte range `range` (`bytes=a-b`) of `path`.
    pub async fn get_range(&mut self, path: &str, range: &str) -> (Page, Vec<u8>) {
        let req = self
            .http
            .get(format!("{}{path}", self.base))
            .header(header::RANGE, range);
        let page = self.send(req).await;
        let bytes = page.bytes.clone();
        (page, bytes)
    }

    /// GETs `path`.
    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// POSTs a form to `path`.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    /// Fills and sends the sign-in form.
    pub async fn sign_in(&mut self, login: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let csrf = form.csrf();
        self.post(
            "/login",
            &[("csrf", &csrf), ("login", login), ("password", password)],
        )
        .await
    }

    /// Signs in through the form, which must succeed.
    pub async fn sign_in_ok(&mut self, login: &str, password: &str) {
        let done = self.sign_in(login, password).await;
        assert_eq!(done.status, 303, "sign-in of {login}: {}", done.body);
    }

    /// Uploads `body` as `file_name` through the import form.
    pub async fn upload(&mut self, bank: &str, file_name: &str, body: Vec<u8>) -> Page {
        let form_page = self.get("/cases/import").await;
        let csrf = form_page.csrf();
        let form = reqwest::multipart::Form::new()
            .text("csrf", csrf)
            .text("bank", bank.to_owned())
            .part(
                "file",
                reqwest::multipart::Part::bytes(body).file_name(file_name.to_owned()),
            );
        let req = self
            .http
            .post(format!("{}/cases/import", self.base))
            .multipart(form);
        self.send(req).await
    }
}
