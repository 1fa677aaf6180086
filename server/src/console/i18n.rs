//! The console's two languages: simplified Chinese (the default: the console is for
//! Chinese bank staff first) and English, chosen per browser by the `tandem_lang` cookie,
//! else by `Accept-Language`. Every string a page shows comes from the message files in
//! `server/locales/{zh-CN,en}/` (Fluent; one file per area of the console, the same files
//! in both languages), embedded at build time.

use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// The cookie that keeps a browser's choice of language.
pub const LANG_COOKIE: &str = "tandem_lang";

/// The message files of one language, by area.
macro_rules! message_files {
    ($lang:literal) => {
        &[
            include_str!(concat!("../../locales/", $lang, "/console.ftl")),
            include_str!(concat!("../../locales/", $lang, "/manage.ftl")),
            include_str!(concat!("../../locales/", $lang, "/money.ftl")),
            include_str!(concat!("../../locales/", $lang, "/admin.ftl")),
            include_str!(concat!("../../locales/", $lang, "/dossier.ftl")),
            include_str!(concat!("../../locales/", $lang, "/retention.ftl")),
        ]
    };
}

const ZH_CN: &[&str] = message_files!("zh-CN");
const EN: &[&str] = message_files!("en");

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 简体中文, the default.
    ZhCn,
    /// English.
    En,
}

impl Lang {
    /// Both, the default first.
    pub const ALL: [Lang; 2] = [Lang::ZhCn, Lang::En];

    /// The BCP 47 tag (`lang` attribute, cookie value).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The other language, offered as a switch on every page.
    pub fn other(self) -> Lang {
        match self {
            Lang::ZhCn => Lang::En,
            Lang::En => Lang::ZhCn,
        }
    }

    /// The language a tag names, if the console speaks it (`zh`, `zh-CN`, `zh-Hans…` are
    /// Chinese; `en…` English).
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::ZhCn),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The browser's choice: its cookie, else the first language of `Accept-Language` (by
    /// quality) the console speaks, else Chinese.
    pub fn negotiate(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(lang) = cookie.and_then(Lang::from_tag) {
            return lang;
        }
        let mut offered: Vec<(f32, usize, Lang)> = accept_language
            .unwrap_or_default()
            .split(',')
            .enumerate()
            .filter_map(|(i, item)| {
                let mut parts = item.split(';');
                let lang = Lang::from_tag(parts.next()?)?;
                let quality = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (quality > 0.0).then_some((quality, i, lang))
            })
            .collect();
        offered.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        offered.first().map_or(Lang::ZhCn, |(_, _, lang)| *lang)
    }

    fn sources(self) -> &'static [&'static str] {
        match self {
            Lang::ZhCn => ZH_CN,
            Lang::En => EN,
        }
    }

    fn bundle(self) -> &'static FluentBundle<FluentResource> {
        static BUNDLES: OnceLock<[FluentBundle<FluentResource>; 2]> = OnceLock::new();
        let bundles = BUNDLES.get_or_init(|| Lang::ALL.map(build_bundle));
        match self {
            Lang::ZhCn => &bundles[0],
            Lang::En => &bundles[1],
        }
    }

    /// The message `id`. A missing message shows its id (and is logged): a test keeps
    /// both files complete, so this never reaches a user.
    pub fn t(self, id: &str) -> String {
        self.format(id, None)
    }

    /// What separates the items of a list of names: `、` in Chinese, `, ` in English.
    pub fn list_separator(self) -> &'static str {
        match self {
            Lang::ZhCn => "、",
            Lang::En => ", ",
        }
    }

    /// Whether this language has the message `id` (for messages picked at run time, like a
    /// problem's kind, that may fall back to a general one).
    pub fn has(self, id: &str) -> bool {
        self.bundle().has_message(id)
    }

    /// The message `id` with its arguments.
    pub fn t_args(self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let mut fluent = FluentArgs::new();
        for (name, value) in args {
            fluent.set(*name, value.clone());
        }
        self.format(id, Some(&fluent))
    }

    fn format(self, id: &str, args: Option<&FluentArgs<'_>>) -> String {
        let bundle = self.bundle();
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            tracing::error!(id, lang = self.tag(), "console message missing");
            return id.to_owned();
        };
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, args, &mut errors);
        if !errors.is_empty() {
            tracing::error!(
                id,
                lang = self.tag(),
                ?errors,
                "console message did not format"
            );
        }
        text.into_owned()
    }

    /// Every message id of this language's file.
    pub fn message_ids(self) -> Vec<String> {
        self.sources()
            .iter()
            .flat_map(|source| {
                FluentResource::try_new((*source).to_owned())
                    .map(|resource| {
                        resource
                            .entries()
                            .filter_map(|entry| match entry {
                                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                                _ => None,
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// A bundle of one language's messages. The files are part of the binary and checked by
/// a test, so a syntax error is a build mistake: it is logged and the broken entries left
/// out rather than taking the server down.
fn build_bundle(lang: Lang) -> FluentBundle<FluentResource> {
    let id: LanguageIdentifier = lang
        .tag()
        .parse()
        .unwrap_or_else(|_| LanguageIdentifier::default());
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks around arguments: the pages set `dir` themselves.
    bundle.set_use_isolating(false);
    for source in lang.sources() {
        let resource = match FluentResource::try_new((*source).to_owned()) {
            Ok(r) => r,
            Err((r, errors)) => {
                tracing::error!(lang = lang.tag(), ?errors, "console messages do not parse");
                r
            }
        };
        if let Err(errors) = bundle.add_resource(resource) {
            tracing::error!(lang = lang.tag(), ?errors, "console messages clash");
        }
    }
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_messages_and_each_parses() {
        for lang in Lang::ALL {
            for (i, source) in lang.sources().iter().enumerate() {
                assert!(
                    FluentResource::try_new((*source).to_owned()).is_ok(),
                    "{} file {i} does not parse",
                    lang.tag()
                );
            }
        }
        let mut zh = Lang::ZhCn.message_ids();
        let mut en = Lang::En.message_ids();
        zh.sort();
        en.sort();
        assert!(!zh.is_empty());
        let mut unique = zh.clone();
        unique.dedup();
        assert_eq!(unique, zh, "a message id is defined twice");
        assert_eq!(zh, en, "zh-CN and en must define the same message ids");
    }

    #[test]
    fn each_file_is_written_in_its_own_language() {
        let han = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        for id in Lang::En.message_ids() {
            let text = Lang::En.t(&id);
            // The switch names the other language in that language, on purpose.
            if id != "lang-other" {
                assert!(!han(&text), "en {id} holds Chinese: {text}");
            }
        }
        for id in Lang::ZhCn.message_ids() {
            let text = Lang::ZhCn.t(&id);
            // Messages that are only arguments and punctuation (a name, a purpose's kind and
            // text joined by a full-width colon) carry no words of their own.
            if !["lang-other", "signed-in-as", "dossier-purpose-shown"].contains(&id.as_str()) {
                assert!(han(&text), "zh-CN {id} holds no Chinese: {text}");
            }
        }
    }

    #[test]
    fn chinese_is_the_default_and_a_cookie_wins_over_the_browser() {
        assert_eq!(Lang::negotiate(None, None), Lang::ZhCn);
        assert_eq!(Lang::negotiate(None, Some("fr-FR, de;q=0.8")), Lang::ZhCn);
        assert_eq!(Lang::negotiate(None, Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::negotiate(None, Some("en;q=0.5, zh-CN;q=0.9")),
            Lang::ZhCn
        );
        assert_eq!(Lang::negotiate(None, Some("zh-Hans-CN, en")), Lang::ZhCn);
        assert_eq!(Lang::negotiate(None, Some("en;q=0, zh;q=0")), Lang::ZhCn);
        assert_eq!(Lang::negotiate(Some("en"), Some("zh-CN")), Lang::En);
        assert_eq!(Lang::negotiate(Some("xx"), Some("en")), Lang::En);
    }

    #[test]
    fn arguments_are_placed_without_isolation_marks() {
        let text = Lang::En.t_args("requests-count", &[("count", 3.into())]);
        assert_eq!(text, "3 awaiting approval");
        assert_eq!(Lang::ZhCn.t("nav-requests"), "外访申请");
    }
}
