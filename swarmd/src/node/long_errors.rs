//! Errors that quote what a client sent back to it (`service "..." not
//! found`, an image reference that does not parse) stay short: a value of
//! 20,000 characters made a `grpc-message` header over the 16 KiB that
//! gRPC's C core (Python's, C++'s clients) takes, and those clients saw
//! `RESOURCE_EXHAUSTED` about metadata rather than the error. Done in one
//! place, on every answer, rather than at each message that quotes.

/// The longest `grpc-message` header left as it is, encoded.
const MAX_MESSAGE_HEADER: usize = 4096;

/// A quoted value, or a word, kept whole up to this many bytes, else cut
/// to its first [`KEPT_OF_A_LONG_VALUE`].
const MAX_VALUE: usize = 256;
const KEPT_OF_A_LONG_VALUE: usize = 64;

/// `response` with its error message shortened, if it has one too long.
pub(crate) fn shortened<B>(mut response: http::Response<B>) -> http::Response<B> {
    let too_long = response
        .headers()
        .get("grpc-message")
        .is_some_and(|message| message.len() > MAX_MESSAGE_HEADER);
    if too_long && let Some(status) = tonic::Status::from_header_map(response.headers()) {
        let short = tonic::Status::new(status.code(), shorten(status.message()));
        // Only fails on a message that cannot be encoded, which a
        // shortened one of a decoded message can.
        let _ = short.add_header(response.headers_mut());
    }
    response
}

/// `message` with each quoted value and each word over [`MAX_VALUE`]
/// bytes cut short (saying how long it was), then, if still long, its end.
fn shorten(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_HEADER));
    let mut rest = message;
    // Quotes as `{:?}` writes them: an inner one is escaped.
    while let Some(open) = rest.find('"') {
        push_words(&mut out, &rest[..=open]);
        let quoted = &rest[open + 1..];
        let close = closing_quote(quoted).unwrap_or(quoted.len());
        push_value(&mut out, &quoted[..close]);
        rest = &quoted[close..];
        if let Some(after) = rest.strip_prefix('"') {
            out.push('"');
            rest = after;
        }
    }
    push_words(&mut out, rest);
    let most = MAX_MESSAGE_HEADER / 4;
    if out.len() > most {
        out.truncate(floor_char_boundary(&out, most));
        out.push('…');
    }
    out
}

/// `text`, each of its words (between white space) as [`push_value`]
/// pushes it.
fn push_words(out: &mut String, text: &str) {
    let mut word_start = 0;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() {
            push_value(out, &text[word_start..at]);
            out.push(c);
            word_start = at + c.len_utf8();
        }
    }
    push_value(out, &text[word_start..]);
}

/// `value`, or its start and length if over [`MAX_VALUE`] bytes.
fn push_value(out: &mut String, value: &str) {
    if value.len() > MAX_VALUE {
        out.push_str(&value[..floor_char_boundary(value, KEPT_OF_A_LONG_VALUE)]);
        out.push_str(&format!("…({} bytes)", value.len()));
    } else {
        out.push_str(value);
    }
}

/// Where the quote that `quoted` (the text after an opening one) ends.
fn closing_quote(quoted: &str) -> Option<usize> {
    let mut escaped = false;
    for (at, c) in quoted.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(at),
            _ => escaped = false,
        }
    }
    None
}

/// The largest char boundary of `text` at or under `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    (0..=at.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_quoted_value_is_cut_and_the_rest_of_the_message_kept() {
        let long = "q".repeat(20_000);
        let said = shorten(&format!("service {long:?} not found"));
        assert_eq!(said, format!("service \"{}…(20000 bytes)\" not found", "q".repeat(64)));
        let short = "service \"web\" not found, nor \"a \\\"quoted\\\" one\"";
        assert_eq!(shorten(short), short, "short quotes, escaped ones too, stay whole");
        let bare = shorten(&format!("service {} not found", "q".repeat(20_000)));
        assert_eq!(
            bare,
            format!("service {}…(20000 bytes) not found", "q".repeat(64)),
            "a word too"
        );
        let wide = "é".repeat(300);
        let said = shorten(&format!("image {wide:?}: bad"));
        assert!(
            said.starts_with("image \"éé") && said.ends_with("…(600 bytes)\": bad"),
            "{said}"
        );
    }

    #[test]
    fn a_long_answer_is_shortened_and_a_short_one_left_alone() {
        let long = tonic::Status::not_found(format!("service {:?} not found", "q".repeat(20_000)));
        let response = shortened(long.into_http::<()>());
        let status = tonic::Status::from_header_map(response.headers()).expect("a status");
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert!(
            status.message().ends_with("…(20000 bytes)\" not found"),
            "{}",
            status.message()
        );
        let short = tonic::Status::not_found("service \"web\" not found");
        let response = shortened(short.clone().into_http::<()>());
        assert_eq!(
            tonic::Status::from_header_map(response.headers())
                .expect("a status")
                .message(),
            short.message()
        );
    }
}
