//! Server-rendered pages: minijinja templates compiled into the binary, HTML auto-escaped.

use minijinja::Environment;
use serde::Serialize;

pub struct Templates {
    env: Environment<'static>,
}

const PAGES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("index.html", include_str!("../templates/index.html")),
    (
        "upload_success.html",
        include_str!("../templates/upload_success.html"),
    ),
    ("gallery.html", include_str!("../templates/gallery.html")),
    ("job.html", include_str!("../templates/job.html")),
    ("error.html", include_str!("../templates/error.html")),
];

impl Templates {
    pub fn load() -> Result<Templates, minijinja::Error> {
        let mut env = Environment::new();
        for (name, source) in PAGES {
            env.add_template(name, source)?;
        }
        env.add_filter("filesize", filesize);
        Ok(Templates { env })
    }

    pub fn render(&self, name: &str, ctx: impl Serialize) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

fn filesize(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{:.1} MiB", b / KIB / KIB)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_page_compiles_and_escapes() {
        let t = Templates::load().unwrap();
        let html = t
            .render(
                "error.html",
                minijinja::context! { status => 415, title => "Not an image", message => "<script>x</script>" },
            )
            .unwrap();
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>x"));
        assert_eq!(filesize(10), "10 B");
        assert_eq!(filesize(1536), "1.5 KiB");
        assert_eq!(filesize(20 * 1024 * 1024), "20.0 MiB");
    }
}
