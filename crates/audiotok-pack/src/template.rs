//! Chat templates: HF Jinja templates rendered with minijinja, set up as transformers sets up
//! Jinja2 for `apply_chat_template`: `trim_blocks` and `lstrip_blocks` on, loop controls,
//! `raise_exception(msg)`, `strftime_now(fmt)` (fixed to the epoch so output is reproducible),
//! `tojson`, and Python string/dict methods (`.strip()`, `.items()`, ...) through
//! minijinja-contrib's pycompat layer.

use minijinja::{Environment, Error, ErrorKind, Value};

use crate::error::PackError;

/// The chat template of Qwen2-Audio-7B-Instruct: ChatML, a default system prompt when the first
/// message is not a system message, and `Audio k: <|audio_bos|><|AUDIO|><|audio_eos|>\n` for the
/// k-th audio content item.
pub const QWEN2_AUDIO_CHAT_TEMPLATE: &str = r#"{% set audio_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system
You are a helpful assistant.<|im_end|>
{% endif %}<|im_start|>{{ message['role'] }}
{% if message['content'] is string %}{{ message['content'] }}<|im_end|>
{% else %}{% for content in message['content'] %}{% if 'audio' in content or 'audio_url' in content or message['type'] == 'audio' %}{% set audio_count.value = audio_count.value + 1 %}Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>
{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>
{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
{% endif %}"#;

/// Template instructions one row may execute (minijinja fuel): far above what a real chat
/// template needs (the Qwen2-Audio one takes about 40 per message), so a runaway template
/// (nested loops) ends in a reject for its row within seconds instead of hanging the run.
pub const TEMPLATE_FUEL: u64 = 10_000_000;

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    origin: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("origin", &self.origin).finish()
    }
}

fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

fn strftime_now(_format: String) -> Result<Value, Error> {
    // A fixed date keeps packed output reproducible; templates use it for "Today is ...".
    Ok(Value::from("1970-01-01"))
}

impl ChatTemplate {
    /// Compiles `source`; `origin` names it in errors.
    pub fn new(source: &str, origin: &str) -> Result<ChatTemplate, PackError> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build();
        env.set_syntax(syntax.map_err(|e| PackError::Template { origin: origin.to_string(), reason: e.to_string() })?);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| PackError::Template { origin: origin.to_string(), reason: format!("{e:#}") })?;
        Ok(ChatTemplate { env, origin: origin.to_string() })
    }

    /// The built-in Qwen2-Audio template.
    pub fn qwen2_audio() -> ChatTemplate {
        match ChatTemplate::new(QWEN2_AUDIO_CHAT_TEMPLATE, "built-in Qwen2-Audio") {
            Ok(t) => t,
            // The built-in template is a constant checked by the tests.
            Err(e) => unreachable!("built-in template: {e}"),
        }
    }

    /// Where the template came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Renders `messages` (a JSON list) as `apply_chat_template(messages, tokenize=False,
    /// add_generation_prompt=...)`.
    pub fn render(&self, messages: &serde_json::Value, add_generation_prompt: bool) -> Result<String, String> {
        let tmpl = self.env.get_template("chat").map_err(|e| e.to_string())?;
        let ctx = minijinja::context! {
            messages => Value::from(minijinja::value::Serde(messages)),
            add_generation_prompt => add_generation_prompt,
        };
        tmpl.render(ctx).map_err(|e| {
            if e.kind() == ErrorKind::OutOfFuel {
                format!(
                    "the template ran out of fuel: more than {TEMPLATE_FUEL} instructions for one row (a runaway loop?)"
                )
            } else {
                format!("{e:#}")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_template_renders_audio_items_and_default_system_prompt() {
        let t = ChatTemplate::qwen2_audio();
        let msgs = json!([
            {"role": "user", "content": [{"type": "audio", "audio_url": "a.wav"}, {"type": "text", "text": "What is said?"}]},
            {"role": "assistant", "content": "Hello."}
        ]);
        let out = t.render(&msgs, false).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n\
             Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nWhat is said?<|im_end|>\n\
             <|im_start|>assistant\nHello.<|im_end|>\n"
        );
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel() {
        let t = ChatTemplate::new(
            "{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}",
            "test",
        )
        .unwrap();
        let err = t.render(&json!([]), false).unwrap_err();
        assert!(err.contains("ran out of fuel") && err.contains("10000000"), "{err}");
        // The built-in template on a long conversation stays far below the budget.
        let turn = json!({"role": "user", "content": [{"type": "audio", "audio_url": "a.wav"}, {"type": "text", "text": "x"}]});
        let many = serde_json::Value::Array(vec![turn; 2000]);
        assert!(ChatTemplate::qwen2_audio().render(&many, false).is_ok());
    }

    #[test]
    fn raise_exception_and_python_methods() {
        let t = ChatTemplate::new("{{ messages[0]['content'].strip() }}{% if messages|length > 1 %}{{ raise_exception('one only') }}{% endif %}", "test").unwrap();
        assert_eq!(t.render(&json!([{"role": "user", "content": "  hi "}]), false).unwrap(), "hi");
        let err = t.render(&json!([{"content": "a"}, {"content": "b"}]), false).unwrap_err();
        assert!(err.contains("one only"), "{err}");
    }
}
