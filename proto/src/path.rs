//! Paths inside a container, in one spelling.

/// An absolute path as the one directory it names (`/data/` and
/// `/a/../data` as `/data`), as Go's `path.Clean` writes it, so that a
/// mount is found by its target however it was typed, and two spellings
/// of one target are seen as one. A relative path is left as typed (the
/// manager refuses it).
pub fn clean_path(path: &str) -> String {
    if !path.starts_with('/') {
        return path.to_string();
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_are_cleaned_as_go_cleans_them() {
        for (typed, clean) in [
            ("/data/", "/data"),
            ("/a/../data", "/data"),
            ("//x/./y//", "/x/y"),
            ("/", "/"),
            ("/..", "/"),
            ("/tmp/..", "/"),
            ("relative/../x", "relative/../x"),
        ] {
            assert_eq!(clean_path(typed), clean, "{typed}");
        }
    }
}
