"""PyTorch reference of audiotok's BSQ spectrogram tokenizer (issue 12), written by the project from
bsq-vit's behaviour (github:zhaoyue-zephyrus/bsq-vit, `BinarySphericalQuantizer` with l2_norm and
post_q_l2_norm, soft entropy) and the issue's model description. The Rust crate `audiotok-bsq` must
agree with it; tensor names are those of `crates/audiotok-bsq/src/params.rs`.

Layout: x is [B, n_mels, T] in [-1, 1]; patches freq_patch x time_patch, tokens time-major
(n = t * nf + f), patch values mel-bin major. Blocks: x += attn(ln1 x); [x += conv(x)]; x += mlp(ln2 x).
Conformer conv: ln -> Linear(W, 2W) -> GLU -> depthwise conv along time within each frequency row
(zero padding k//2, no bias: BatchNorm follows) -> BatchNorm over every token -> SiLU -> Linear(W, W).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT = dict(
    n_mels=128, crop_frames=1024, freq_patch=16, time_patch=16, width=512, encoder_depth=8,
    decoder_depth=8, heads=8, mlp_ratio=4.0, conformer=True, conv_kernel=31, head_dim=1024, bits=18,
    group_size=9, inv_temperature=1.0, beta=0.0, gamma0=1.0, gamma=1.0, zeta=1.0,
    persample_entropy="group",
)


class Attention(nn.Module):
    def __init__(self, w, heads):
        super().__init__()
        self.qkv = nn.Linear(w, 3 * w)
        self.proj = nn.Linear(w, w)
        self.heads = heads

    def forward(self, x):
        b, n, w = x.shape
        h = self.heads
        d = w // h
        qkv = self.qkv(x).reshape(b, n, 3, h, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1) @ v
        return self.proj(att.transpose(1, 2).reshape(b, n, w))


class ConvModule(nn.Module):
    def __init__(self, w, kernel):
        super().__init__()
        self.ln = nn.LayerNorm(w)
        self.pw1 = nn.Linear(w, 2 * w)
        self.dw = nn.Conv1d(w, w, kernel, padding=kernel // 2, groups=w, bias=False)
        self.bn = nn.BatchNorm1d(w)
        self.pw2 = nn.Linear(w, w)

    def forward(self, x, nt, nf):
        b, n, w = x.shape
        a, gate = self.pw1(self.ln(x)).chunk(2, dim=-1)
        y = a * torch.sigmoid(gate)
        y = y.reshape(b, nt, nf, w).permute(0, 2, 3, 1).reshape(b * nf, w, nt)
        y = self.bn(self.dw(y))
        y = y.reshape(b, nf, w, nt).permute(0, 3, 1, 2).reshape(b, n, w)
        return self.pw2(F.silu(y))


class Mlp(nn.Module):
    def __init__(self, w, hidden):
        super().__init__()
        self.fc1 = nn.Linear(w, hidden)
        self.fc2 = nn.Linear(hidden, w)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        w = cfg["width"]
        self.ln1 = nn.LayerNorm(w)
        self.attn = Attention(w, cfg["heads"])
        self.conv = ConvModule(w, cfg["conv_kernel"]) if cfg["conformer"] else None
        self.ln2 = nn.LayerNorm(w)
        self.mlp = Mlp(w, int(w * cfg["mlp_ratio"]))

    def forward(self, x, nt, nf):
        x = x + self.attn(self.ln1(x))
        if self.conv is not None:
            x = x + self.conv(x, nt, nf)
        return x + self.mlp(self.ln2(x))


class Head(nn.Module):
    def __init__(self, w, hidden, out):
        super().__init__()
        self.fc = nn.Linear(w, hidden)
        self.out = nn.Linear(hidden, out)

    def forward(self, x):
        return self.out(torch.tanh(self.fc(x)))


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        w, n = cfg["width"], n_tokens(cfg)
        self.patch_embed = nn.Linear(cfg["freq_patch"] * cfg["time_patch"], w)
        self.pos_embed = nn.Parameter(torch.randn(n, w) * 0.02)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg["encoder_depth"])])
        self.ln_post = nn.LayerNorm(w)


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        w, n = cfg["width"], n_tokens(cfg)
        self.proj = nn.Linear(cfg["bits"], w)
        self.pos_embed = nn.Parameter(torch.randn(n, w) * 0.02)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg["decoder_depth"])])
        self.ln_post = nn.LayerNorm(w)
        self.head = Head(w, cfg["head_dim"], cfg["freq_patch"] * cfg["time_patch"])


class Quant(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.proj = nn.Linear(cfg["width"], cfg["bits"])


def n_tokens(cfg):
    return (cfg["n_mels"] // cfg["freq_patch"]) * (cfg["crop_frames"] // cfg["time_patch"])


def entropy(p):
    """bsq-vit get_entropy(normalize=False): -(p * log(p + 1e-8)).sum(-1)."""
    return -(p * torch.log(p + 1e-8)).sum(-1)


def group_codebook(g):
    """The 2^g group codes, +-1, MSB first."""
    d = torch.arange(2 ** g).unsqueeze(-1)
    basis = 2 ** torch.arange(g - 1, -1, -1)
    return (torch.remainder(torch.div(d, basis, rounding_mode="floor"), 2) * 2 - 1).float()


def bsq_quantize(z, cfg):
    """bsq-vit BinarySphericalQuantizer.forward on an L2-normalised z [..., L] (l2_norm=True)."""
    L, g, tau = cfg["bits"], cfg["group_size"], cfg["inv_temperature"]
    scale = 1.0 / math.sqrt(L)
    zhat = torch.where(z > 0, torch.ones_like(z), -torch.ones_like(z))
    zq = z + (zhat - z).detach()
    if cfg["persample_entropy"] == "analytical":
        p = torch.sigmoid(-4 * z * scale * tau)
        prob = torch.stack([p, 1 - p], dim=-1)
        hps = entropy(prob).sum(-1).mean()
        avg = prob.reshape(-1, L, 2).mean(0)
    else:
        cb = group_codebook(g).to(z) * scale
        zg = z.reshape(*z.shape[:-1], L // g, g)
        logits = 2 * tau * torch.einsum("...gc,dc->...gd", zg, cb)
        prob = logits.softmax(-1)
        hps = entropy(prob).sum(-1).mean()
        avg = prob.reshape(-1, L // g, 2 ** g).mean(0)
    hcb = entropy(avg).sum()
    zq = zq * scale
    commit = cfg["beta"] * ((zq.detach() - z) ** 2).sum(-1).mean()
    loss = commit + cfg["zeta"] * (cfg["gamma0"] * hps - cfg["gamma"] * hcb) / tau
    return dict(zq=zq, commit=commit, persample_entropy=hps, codebook_entropy=hcb, bsq_loss=loss, avg_prob=avg)


def indices(z, bits):
    basis = 2 ** torch.arange(bits - 1, -1, -1, dtype=torch.int64)
    return ((z > 0).to(torch.int64) * basis).sum(-1)


class BsqRef(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = {**DEFAULT, **cfg}
        self.enc = Encoder(self.cfg)
        self.quant = Quant(self.cfg)
        self.dec = Decoder(self.cfg)

    def state(self):
        """The tensors the Rust crate loads (BatchNorm's num_batches_tracked is not one of them)."""
        return {k: v.detach().clone().contiguous() for k, v in self.state_dict().items()
                if not k.endswith("num_batches_tracked")}

    def patchify(self, x):
        c = self.cfg
        b, f, t = x.shape
        nf, nt = f // c["freq_patch"], t // c["time_patch"]
        p = x.reshape(b, nf, c["freq_patch"], nt, c["time_patch"]).permute(0, 3, 1, 2, 4)
        return p.reshape(b, nt * nf, c["freq_patch"] * c["time_patch"]), nt, nf

    def unpatchify(self, p, nt):
        c = self.cfg
        b = p.shape[0]
        nf = c["n_mels"] // c["freq_patch"]
        x = p.reshape(b, nt, nf, c["freq_patch"], c["time_patch"]).permute(0, 2, 3, 1, 4)
        return x.reshape(b, c["n_mels"], nt * c["time_patch"])

    def encode_latent(self, x):
        p, nt, nf = self.patchify(x)
        h = self.enc.patch_embed(p) + self.enc.pos_embed[: nt * nf]
        for blk in self.enc.blocks:
            h = blk(h, nt, nf)
        return F.normalize(self.quant.proj(self.enc.ln_post(h)), dim=-1)

    def decode_latent(self, zq):
        nf = self.cfg["n_mels"] // self.cfg["freq_patch"]
        n = zq.shape[1]
        nt = n // nf
        h = self.dec.proj(zq) + self.dec.pos_embed[:n]
        for blk in self.dec.blocks:
            h = blk(h, nt, nf)
        p = self.dec.head(self.dec.ln_post(h))
        return self.unpatchify(p, nt).clamp(-1, 1)

    def forward(self, x, recon_loss="l1", bsq_weight=1.0):
        z = self.encode_latent(x)
        q = bsq_quantize(z, self.cfg)
        recon = self.decode_latent(q["zq"])
        diff = recon - x
        r = diff.abs().mean() if recon_loss == "l1" else (diff ** 2).mean()
        out = dict(q)
        out.update(z=z, recon=recon, recon_loss=r, total=r + bsq_weight * q["bsq_loss"],
                   indices=indices(z.detach(), self.cfg["bits"]),
                   group_indices=indices(z.detach().reshape(*z.shape[:-1], -1, self.cfg["group_size"]),
                                         self.cfg["group_size"]))
        return out


def decays(name, p):
    """Weight decay on matrices and conv kernels (names ending in .weight with rank >= 2), not on biases,
    norms or positional tables."""
    return name.endswith(".weight") and p.dim() >= 2
