//! Golden checks against transformers (fixtures from tools/gen_pack_fixtures.py; the Qwen2 BPE
//! files come from tools/fetch_qwen_tokenizer.sh, which `.ci/run` calls before the tests).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use audiotok_pack::{build_document, AudioTokenizer, ChatTemplate, TrainOn};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pack")
}

fn tokenizer() -> &'static AudioTokenizer {
    static TOK: OnceLock<AudioTokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let dir = fixtures().join("qwen2-tokenizer");
        assert!(
            dir.join("vocab.json").is_file(),
            "{} is missing: run tools/fetch_qwen_tokenizer.sh (CI does)",
            dir.display()
        );
        AudioTokenizer::load(&dir).unwrap()
    })
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn golden() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("tokenizer_ids.json")).unwrap()).unwrap()
}

#[test]
fn special_token_ids_are_qwen2_audio_s() {
    let tok = tokenizer();
    let g = golden();
    for (name, id) in g["special_ids"].as_object().unwrap() {
        assert_eq!(tok.token_to_id(name), Some(id.as_u64().unwrap() as u32), "{name}");
    }
    let ids = tok.special_ids();
    assert_eq!((ids.audio, ids.audio_bos, ids.audio_eos, ids.pad), (151646, 151647, 151648, 151643));
}

#[test]
fn token_ids_equal_transformers_qwen2_tokenizer_fast() {
    let tok = tokenizer();
    let g = golden();
    let cases = g["strings"].as_array().unwrap();
    assert!(cases.len() >= 40);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        assert_eq!(tok.encode(text).unwrap().ids, ids_of(&case["ids"]), "{text:?}");
    }
}

#[test]
fn expansion_equals_the_qwen2_audio_processor() {
    let tok = tokenizer();
    let g = golden();
    let cases = g["processor"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let audio: Vec<String> =
            case["audio"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
        let counts: Vec<usize> =
            case["audio_tokens"].as_array().unwrap().iter().map(|a| a.as_u64().unwrap() as usize).collect();
        let doc = build_document(tok, text, audio, &counts, TrainOn::All).unwrap();
        assert_eq!(doc.ids, ids_of(&case["ids"]), "{text:?}");
    }
}

#[test]
fn chat_templates_render_as_transformers_does() {
    let hub_source = std::fs::read_to_string(fixtures().join("chat_template.jinja")).unwrap();
    let default_source = std::fs::read_to_string(fixtures().join("chat_template_processor_default.jinja")).unwrap();
    // The built-in template is the published Qwen2-Audio-7B-Instruct one.
    assert_eq!(audiotok_pack::template::QWEN2_AUDIO_CHAT_TEMPLATE, hub_source);
    let hub = ChatTemplate::qwen2_audio();
    let processor_default = ChatTemplate::new(&default_source, "processor default").unwrap();
    let lines = std::fs::read_to_string(fixtures().join("chat_template.jsonl")).unwrap();
    let mut n = 0;
    for line in lines.lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        let t = match case["template"].as_str().unwrap() {
            "hub" => &hub,
            "processor_default" => &processor_default,
            other => panic!("unknown template {other}"),
        };
        let out = t.render(&case["messages"], case["add_generation_prompt"].as_bool().unwrap()).unwrap();
        assert_eq!(out, case["rendered"].as_str().unwrap(), "{} ({})", case["name"], case["template"]);
        n += 1;
    }
    assert!(n >= 10);
}
