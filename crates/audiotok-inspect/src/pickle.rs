//! Tensor names, shapes and dtypes from a `torch.save` zip (`pytorch_model.bin`, `.pt`, `.pth`), read
//! by walking the pickle's opcodes, never by unpickling: nothing named in the file is imported or
//! called.
//!
//! A torch.save zip holds `ARCHIVE/data.pkl` (the object graph, protocol 2) and `ARCHIVE/data/KEY`
//! (one uncompressed file per storage). The walk keeps a stack of plain values and understands exactly
//! the opcodes and callables torch.save emits for a state dict: `collections.OrderedDict()`,
//! `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`,
//! `torch._utils._rebuild_parameter(tensor, ...)`, and persistent ids `('storage', torch.XStorage,
//! key, location, numel)`. In [`Mode::Strict`] any other global (`os.system`, `builtins.eval`, a
//! class) is refused with its name; in [`Mode::Lenient`] it becomes an opaque value that is never
//! called (training checkpoints hold such entries beside their state dict). Every length is checked
//! against what is left of the pickle, memo copies against a budget, and every tensor's extent
//! against its storage and the storage against its zip entry, so a lying file is refused, with the
//! tensor it names, before anything is allocated at the size it states.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use crate::{Dtype, InspectError, StorageRef, TensorMeta};

/// Largest `data.pkl` read (a 70B model's is a few MB: it holds names and shapes only).
pub const MAX_PICKLE_BYTES: u64 = 256 << 20;

/// Most values the walk may create or copy (memo gets included): a bound on a pickle bomb.
const MAX_VALUES: usize = 50_000_000;

/// How globals other than torch.save's own are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Refused: the file is not a plain state dict.
    Strict,
    /// Kept as opaque values, never called; opcodes torch.save does not emit still stop the walk.
    Lenient,
}

#[derive(Clone, Debug)]
enum Obj {
    Mark,
    None,
    Bool,
    Int(i64),
    Float,
    Str(String),
    Bytes,
    Tuple(Vec<Obj>),
    List(Vec<Obj>),
    Dict(Vec<(Obj, Obj)>),
    Global(String, String),
    Storage { dtype: Dtype, key: String, numel: u64 },
    Tensor(Box<TensorRec>),
    Opaque(String),
}

#[derive(Clone, Debug)]
struct TensorRec {
    dtype: Dtype,
    key: String,
    offset: u64,
    shape: Vec<u64>,
    stride: Vec<u64>,
}

impl Obj {
    fn weight(&self) -> usize {
        match self {
            Obj::Tuple(v) | Obj::List(v) => 1 + v.iter().map(Obj::weight).sum::<usize>(),
            Obj::Dict(v) => 1 + v.iter().map(|(k, x)| k.weight() + x.weight()).sum::<usize>(),
            Obj::Tensor(t) => 1 + t.shape.len() * 2,
            _ => 1,
        }
    }
    fn kind(&self) -> String {
        match self {
            Obj::Mark => "a mark".into(),
            Obj::None => "None".into(),
            Obj::Bool => "a bool".into(),
            Obj::Int(_) => "an int".into(),
            Obj::Float => "a float".into(),
            Obj::Str(_) => "a string".into(),
            Obj::Bytes => "bytes".into(),
            Obj::Tuple(_) => "a tuple".into(),
            Obj::List(_) => "a list".into(),
            Obj::Dict(_) => "a dict".into(),
            Obj::Global(m, n) => format!("{m}.{n}"),
            Obj::Storage { .. } => "a storage".into(),
            Obj::Tensor(_) => "a tensor".into(),
            Obj::Opaque(n) => format!("a {n} object"),
        }
    }
}

/// Whether a global is one torch.save emits for a state dict.
fn allowed(module: &str, name: &str) -> bool {
    matches!(
        (module, name),
        ("collections", "OrderedDict")
            | ("torch._utils", "_rebuild_tensor_v2")
            | ("torch._utils", "_rebuild_parameter")
    ) || (module == "torch" && Dtype::from_torch_storage(name).is_some())
}

struct Walker<'a> {
    p: &'a [u8],
    at: usize,
    stack: Vec<Obj>,
    memo: HashMap<u32, Obj>,
    made: usize,
    mode: Mode,
}

impl<'a> Walker<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let start = self.at;
        let end = start
            .checked_add(n)
            .filter(|&e| e <= self.p.len())
            .ok_or_else(|| format!("byte {start}: an argument of {n} bytes runs past the end of the pickle"))?;
        self.at = end;
        Ok(&self.p[start..end])
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn line(&mut self) -> Result<String, String> {
        let rest = &self.p[self.at..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(|| format!("byte {}: unterminated line", self.at))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.at += n + 1;
        Ok(s)
    }
    fn text(&mut self, n: usize) -> Result<String, String> {
        let at = self.at;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("byte {at}: a string that is not UTF-8"))
    }
    fn push(&mut self, o: Obj) -> Result<(), String> {
        self.made += 1;
        if self.made > MAX_VALUES {
            return Err(format!("more than {MAX_VALUES} values: not a state dict"));
        }
        self.stack.push(o);
        Ok(())
    }
    fn pop(&mut self, op: usize) -> Result<Obj, String> {
        self.stack.pop().ok_or_else(|| format!("byte {op}: the stack is empty"))
    }
    fn pop_mark(&mut self, op: usize) -> Result<Vec<Obj>, String> {
        let i = self
            .stack
            .iter()
            .rposition(|o| matches!(o, Obj::Mark))
            .ok_or_else(|| format!("byte {op}: no mark on the stack"))?;
        let items = self.stack.split_off(i + 1);
        self.stack.pop();
        Ok(items)
    }
    fn top(&mut self, op: usize) -> Result<&mut Obj, String> {
        self.stack.last_mut().ok_or_else(|| format!("byte {op}: the stack is empty"))
    }
    fn memo_put(&mut self, k: u32, op: usize) -> Result<(), String> {
        let v = self.stack.last().ok_or_else(|| format!("byte {op}: the stack is empty"))?.clone();
        self.made += v.weight();
        self.memo.insert(k, v);
        Ok(())
    }
    fn memo_get(&mut self, k: u32, op: usize) -> Result<(), String> {
        let v = self.memo.get(&k).ok_or_else(|| format!("byte {op}: memo entry {k} was never stored"))?.clone();
        self.made += v.weight();
        self.push(v)
    }

    fn run(&mut self) -> Result<Obj, String> {
        loop {
            let op_at = self.at;
            let op = self.u8().map_err(|_| format!("byte {op_at}: the pickle ends without STOP"))?;
            match op {
                0x80 => {
                    self.u8()?;
                }
                0x95 => {
                    self.take(8)?;
                } // FRAME
                b'.' => return self.pop(op_at),
                b'(' => self.push(Obj::Mark)?,
                b'N' => self.push(Obj::None)?,
                0x88 | 0x89 => self.push(Obj::Bool)?,
                b'K' => {
                    let v = self.u8()?;
                    self.push(Obj::Int(i64::from(v)))?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Obj::Int(i64::from(v)))?
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Obj::Int(i64::from(v)))?
                }
                0x8a => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?;
                    let v = if n == 0 {
                        0
                    } else if n <= 8 {
                        let mut buf = if b[n - 1] & 0x80 != 0 { [0xffu8; 8] } else { [0u8; 8] };
                        buf[..n].copy_from_slice(b);
                        i64::from_le_bytes(buf)
                    } else {
                        return Err(format!("byte {op_at}: an integer of {n} bytes"));
                    };
                    self.push(Obj::Int(v))?
                }
                b'G' => {
                    self.take(8)?;
                    self.push(Obj::Float)?
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.text(n)?;
                    self.push(Obj::Str(s))?
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let s = self.text(n)?;
                    self.push(Obj::Str(s))?
                }
                b'C' => {
                    let n = usize::from(self.u8()?);
                    self.take(n)?;
                    self.push(Obj::Bytes)?
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    self.take(n)?;
                    self.push(Obj::Bytes)?
                }
                b')' => self.push(Obj::Tuple(Vec::new()))?,
                b't' => {
                    let items = self.pop_mark(op_at)?;
                    self.push(Obj::Tuple(items))?
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return Err(format!("byte {op_at}: a tuple of {n} from a shorter stack"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    if items.iter().any(|o| matches!(o, Obj::Mark)) {
                        return Err(format!("byte {op_at}: a mark inside a tuple"));
                    }
                    self.push(Obj::Tuple(items))?
                }
                b']' => self.push(Obj::List(Vec::new()))?,
                b'}' => self.push(Obj::Dict(Vec::new()))?,
                b'a' => {
                    let v = self.pop(op_at)?;
                    match self.top(op_at)? {
                        Obj::List(l) => l.push(v),
                        o => return Err(format!("byte {op_at}: APPEND to {}", o.kind())),
                    }
                }
                b'e' => {
                    let items = self.pop_mark(op_at)?;
                    self.made += items.len();
                    match self.top(op_at)? {
                        Obj::List(l) => l.extend(items),
                        o => return Err(format!("byte {op_at}: APPENDS to {}", o.kind())),
                    }
                }
                b's' => {
                    let v = self.pop(op_at)?;
                    let k = self.pop(op_at)?;
                    match self.top(op_at)? {
                        Obj::Dict(d) => d.push((k, v)),
                        o => return Err(format!("byte {op_at}: SETITEM on {}", o.kind())),
                    }
                }
                b'u' => {
                    let items = self.pop_mark(op_at)?;
                    if items.len() % 2 != 0 {
                        return Err(format!("byte {op_at}: SETITEMS with an odd number of values"));
                    }
                    match self.top(op_at)? {
                        Obj::Dict(d) => {
                            let mut it = items.into_iter();
                            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                                d.push((k, v));
                            }
                        }
                        o => return Err(format!("byte {op_at}: SETITEMS on {}", o.kind())),
                    }
                }
                b'q' => {
                    let k = u32::from(self.u8()?);
                    self.memo_put(k, op_at)?
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k, op_at)?
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    self.memo_put(k, op_at)?
                }
                b'h' => {
                    let k = u32::from(self.u8()?);
                    self.memo_get(k, op_at)?
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k, op_at)?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name, op_at)?
                }
                0x93 => {
                    let name = self.pop(op_at)?;
                    let module = self.pop(op_at)?;
                    let (Obj::Str(module), Obj::Str(name)) = (module, name) else {
                        return Err(format!("byte {op_at}: STACK_GLOBAL of non-strings"));
                    };
                    self.global(module, name, op_at)?
                }
                b'Q' => {
                    let pid = self.pop(op_at)?;
                    let o = persistent(pid).map_err(|m| format!("byte {op_at}: {m}"))?;
                    self.push(o)?
                }
                b'R' => {
                    let args = self.pop(op_at)?;
                    let callable = self.pop(op_at)?;
                    let o = self.reduce(callable, args).map_err(|m| format!("byte {op_at}: {m}"))?;
                    self.push(o)?
                }
                0x81 => {
                    let _args = self.pop(op_at)?;
                    let cls = self.pop(op_at)?;
                    let o = self.opaque(cls).map_err(|m| format!("byte {op_at}: {m}"))?;
                    self.push(o)?
                }
                b'b' => {
                    self.pop(op_at)?; // the state (an OrderedDict's _metadata, a tensor's attributes) is not needed
                    self.top(op_at)?;
                }
                _ => {
                    return Err(format!(
                        "byte {op_at}: opcode 0x{op:02x}, which torch.save does not emit (refused, nothing executed)"
                    ))
                }
            }
        }
    }

    fn global(&mut self, module: String, name: String, op_at: usize) -> Result<(), String> {
        if self.mode == Mode::Strict && !allowed(&module, &name) {
            return Err(format!(
                "byte {op_at}: the pickle names {module}.{name}, which a torch.save state dict never does \
                 (refused; nothing was imported or executed)"
            ));
        }
        self.push(Obj::Global(module, name))
    }

    fn opaque(&self, callable: Obj) -> Result<Obj, String> {
        match (self.mode, callable) {
            (Mode::Lenient, Obj::Global(m, n)) => Ok(Obj::Opaque(format!("{m}.{n}"))),
            (Mode::Lenient, Obj::Opaque(n)) => Ok(Obj::Opaque(n)),
            (_, o) => Err(format!("a call of {} (refused; nothing executed)", o.kind())),
        }
    }

    fn reduce(&self, callable: Obj, args: Obj) -> Result<Obj, String> {
        let Obj::Global(module, name) = &callable else {
            return self.opaque(callable);
        };
        let Obj::Tuple(mut args) = args else {
            return Err(format!("{module}.{name} called with {} instead of a tuple", args.kind()));
        };
        match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") if args.is_empty() => Ok(Obj::Dict(Vec::new())),
            ("torch._utils", "_rebuild_parameter") if !args.is_empty() => match args.swap_remove(0) {
                t @ Obj::Tensor(_) => Ok(t),
                o => Err(format!("_rebuild_parameter of {}", o.kind())),
            },
            ("torch._utils", "_rebuild_tensor_v2") if args.len() >= 4 => {
                let mut it = args.into_iter();
                let (Some(storage), Some(offset), Some(size), Some(stride)) =
                    (it.next(), it.next(), it.next(), it.next())
                else {
                    return Err("_rebuild_tensor_v2 with too few arguments".into());
                };
                let Obj::Storage { dtype, key, numel } = storage else {
                    return Err(format!("_rebuild_tensor_v2 of {} instead of a storage", storage.kind()));
                };
                let offset = non_negative(&offset).ok_or("_rebuild_tensor_v2: the offset is not a non-negative int")?;
                let shape = ints(&size).ok_or("_rebuild_tensor_v2: the size is not a tuple of non-negative ints")?;
                let stride =
                    ints(&stride).ok_or("_rebuild_tensor_v2: the stride is not a tuple of non-negative ints")?;
                if shape.len() != stride.len() {
                    return Err(format!("_rebuild_tensor_v2: size {shape:?} and stride {stride:?} differ in rank"));
                }
                // The last element reached (offset + Σ (size-1)·stride) must lie in the storage.
                if !shape.contains(&0) {
                    let last = shape
                        .iter()
                        .zip(&stride)
                        .try_fold(offset, |a, (&n, &s)| (n - 1).checked_mul(s).and_then(|x| a.checked_add(x)));
                    if last.is_none_or(|l| l >= numel) {
                        return Err(format!(
                            "a tensor of size {shape:?}, stride {stride:?} at offset {offset} reaches past the end of \
                             storage {key} ({numel} elements)"
                        ));
                    }
                }
                Ok(Obj::Tensor(Box::new(TensorRec { dtype, key, offset, shape, stride })))
            }
            _ if self.mode == Mode::Lenient => Ok(Obj::Opaque(format!("{module}.{name}"))),
            _ => {
                Err(format!("a call of {module}.{name} with {} arguments, which torch.save does not emit", args.len()))
            }
        }
    }
}

fn non_negative(o: &Obj) -> Option<u64> {
    match o {
        Obj::Int(v) => u64::try_from(*v).ok(),
        _ => None,
    }
}

fn ints(o: &Obj) -> Option<Vec<u64>> {
    match o {
        Obj::Tuple(v) => v.iter().map(non_negative).collect(),
        _ => None,
    }
}

fn persistent(pid: Obj) -> Result<Obj, String> {
    let Obj::Tuple(items) = pid else {
        return Err(format!("a persistent id that is {} instead of a tuple", pid.kind()));
    };
    match items.as_slice() {
        [Obj::Str(tag), Obj::Global(module, class), Obj::Str(key), Obj::Str(_location), numel] if tag == "storage" => {
            let dtype = (module == "torch").then(|| Dtype::from_torch_storage(class)).flatten();
            let dtype = dtype.ok_or_else(|| format!("a storage of type {module}.{class}, which is not read"))?;
            let numel = non_negative(numel).ok_or("a storage whose size is not a non-negative int")?;
            Ok(Obj::Storage { dtype, key: key.clone(), numel })
        }
        _ => Err("a persistent id that is not ('storage', torch.XStorage, key, location, size)".into()),
    }
}

/// Tensors of a pickle's bytes (the walk of [`read_pth`]): the state dict at the top level, else
/// under `state_dict` or `model`.
pub fn tensors_of_pickle(p: &[u8], mode: Mode) -> Result<Vec<TensorMeta>, String> {
    let mut w = Walker { p, at: 0, stack: Vec::new(), memo: HashMap::new(), made: 0, mode };
    let top = w.run()?;
    let Obj::Dict(items) = top else {
        return Err(format!("the pickle holds {} instead of a state dict", top.kind()));
    };
    let mut chosen = items;
    if !chosen.iter().any(|(_, v)| matches!(v, Obj::Tensor(_))) {
        let nested = ["state_dict", "model"].iter().find_map(|want| {
            chosen.iter().position(|(k, v)| matches!((k, v), (Obj::Str(k), Obj::Dict(_)) if k == want))
        });
        if let Some(i) = nested {
            if let (_, Obj::Dict(d)) = chosen.swap_remove(i) {
                chosen = d;
            }
        }
    }
    let mut tensors = Vec::new();
    for (k, v) in chosen {
        let (Obj::Str(name), Obj::Tensor(t)) = (k, v) else { continue };
        let t = *t;
        tensors.push(TensorMeta {
            name,
            dtype: t.dtype,
            shape: t.shape,
            storage: Some(StorageRef { key: t.key, offset: t.offset, stride: t.stride }),
        });
    }
    Ok(tensors)
}

/// Reads the tensors of a torch.save zip (see the module docs). Each storage's zip entry must hold
/// the elements its tensors reach.
pub fn read_pth(path: &Path, mode: Mode) -> Result<Vec<TensorMeta>, InspectError> {
    let bad = |msg: String| InspectError::Pickle(path.to_path_buf(), msg);
    let file = std::fs::File::open(path).map_err(|e| InspectError::Io(path.to_path_buf(), e))?;
    let mut magic = [0u8; 4];
    std::io::Read::read(&mut &file, &mut magic).map_err(|e| InspectError::Io(path.to_path_buf(), e))?;
    if &magic != b"PK\x03\x04" {
        return Err(bad(
            "not a PyTorch zip archive (legacy torch.save files from torch < 1.6 are not read: re-save with a \
             current torch, or convert to safetensors)"
                .into(),
        ));
    }
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| bad(format!("not a zip: {e}")))?;
    let mut sizes: HashMap<String, u64> = HashMap::new();
    let mut pkl: Option<(usize, String)> = None;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| bad(format!("zip entry {i}: {e}")))?;
        let name = entry.name().map_err(|e| bad(format!("zip entry {i}: {e}")))?.into_owned();
        if let Some(dir) = name.strip_suffix("/data.pkl").filter(|d| !d.contains('/')) {
            if pkl.is_some() {
                return Err(bad("more than one data.pkl".into()));
            }
            pkl = Some((i, dir.to_string()));
        }
        sizes.insert(name, entry.size());
    }
    let (index, dir) = pkl.ok_or_else(|| bad("no ARCHIVE/data.pkl in the zip: not a torch.save file".into()))?;
    let mut pickle = Vec::new();
    let entry = zip.by_index(index).map_err(|e| bad(format!("{dir}/data.pkl: {e}")))?;
    entry.take(MAX_PICKLE_BYTES + 1).read_to_end(&mut pickle).map_err(|e| bad(format!("{dir}/data.pkl: {e}")))?;
    if pickle.len() as u64 > MAX_PICKLE_BYTES {
        return Err(bad(format!("{dir}/data.pkl: a pickle over {MAX_PICKLE_BYTES} bytes")));
    }
    let tensors = tensors_of_pickle(&pickle, mode).map_err(|m| bad(format!("{dir}/data.pkl: {m}")))?;
    for t in &tensors {
        let Some(s) = &t.storage else { continue };
        let entry = format!("{dir}/data/{}", s.key);
        let have = sizes
            .get(&entry)
            .copied()
            .ok_or_else(|| bad(format!("tensor {}: its storage {entry} is not in the zip", t.name)))?;
        if t.numel() == 0 {
            continue;
        }
        let last = t
            .shape
            .iter()
            .zip(&s.stride)
            .try_fold(s.offset, |a, (&n, &st)| (n - 1).checked_mul(st).and_then(|x| a.checked_add(x)));
        let need = last.and_then(|l| l.checked_add(1)).and_then(|n| n.checked_mul(t.dtype.size()));
        if need.is_none_or(|n| n > have) {
            return Err(bad(format!(
                "tensor {}: shape {:?} of {} at offset {} needs more than the {have} bytes of {entry}",
                t.name, t.shape, t.dtype, s.offset
            )));
        }
    }
    Ok(tensors)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lengths_past_the_end_are_refused() {
        let bomb = [&[0x80, 2, b'X', 0xff, 0xff, 0xff, 0xff][..], b"abc", b"."].concat();
        let err = tensors_of_pickle(&bomb, Mode::Strict).unwrap_err();
        assert!(err.contains("byte 7: an argument of 4294967295 bytes runs past the end"), "{err}");
        assert!(tensors_of_pickle(&[0x80, 2, b'J', 1], Mode::Strict).is_err());
        assert!(tensors_of_pickle(b"\x80\x02ctorch\nFloat", Mode::Strict).unwrap_err().contains("unterminated line"));
        assert!(tensors_of_pickle(b"\x80\x02\xff", Mode::Strict).unwrap_err().contains("opcode 0xff"));
        assert!(tensors_of_pickle(b"\x80\x02", Mode::Strict).unwrap_err().contains("without STOP"));
        assert!(tensors_of_pickle(b"\x80\x02h\x05.", Mode::Strict).unwrap_err().contains("memo entry 5"));
    }

    #[test]
    fn globals_outside_torch_save_are_refused_in_strict_mode() {
        // {"a": os.system("true")}
        let p = b"\x80\x02}X\x01\x00\x00\x00acos\nsystem\nX\x04\x00\x00\x00true\x85Rs.";
        let err = tensors_of_pickle(p, Mode::Strict).unwrap_err();
        assert!(err.contains("names os.system"), "{err}");
        // Lenient: kept as an opaque value, never called; the dict holds no tensor.
        let t = tensors_of_pickle(p, Mode::Lenient).unwrap();
        assert!(t.is_empty());
    }
}
