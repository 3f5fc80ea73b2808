//! Rows in memory, apart from any table library: the runner, the models and
//! the mixing policies work on these.

/// The data columns of a set of rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Row-major `len x d` matrix (columns x0 .. x{d-1}).
    Vectors { d: usize, data: Vec<f64> },
    /// Discrete symbols (column `token`).
    Tokens(Vec<u32>),
    /// `h x w` u8 images, row-major, one after another (column `pixels`),
    /// with a class label per image where known (real rows).
    Images { h: usize, w: usize, pixels: Vec<u8>, labels: Vec<Option<u8>> },
}

impl Values {
    pub fn empty_like(&self) -> Values {
        match self {
            Values::Vectors { d, .. } => Values::Vectors { d: *d, data: Vec::new() },
            Values::Tokens(_) => Values::Tokens(Vec::new()),
            Values::Images { h, w, .. } => Values::Images { h: *h, w: *w, pixels: Vec::new(), labels: Vec::new() },
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Values::Vectors { d, data } => data.len() / d,
            Values::Tokens(t) => t.len(),
            Values::Images { labels, .. } => labels.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Values {
        match self {
            Values::Vectors { d, data } => {
                let mut out = Vec::with_capacity(idx.len() * d);
                for &i in idx {
                    out.extend_from_slice(&data[i * d..(i + 1) * d]);
                }
                Values::Vectors { d: *d, data: out }
            }
            Values::Tokens(t) => Values::Tokens(idx.iter().map(|&i| t[i]).collect()),
            Values::Images { h, w, pixels, labels } => {
                let p = h * w;
                let mut out = Vec::with_capacity(idx.len() * p);
                for &i in idx {
                    out.extend_from_slice(&pixels[i * p..(i + 1) * p]);
                }
                Values::Images { h: *h, w: *w, pixels: out, labels: idx.iter().map(|&i| labels[i]).collect() }
            }
        }
    }

    /// Appends `other`'s rows; both must be of the same kind.
    pub fn extend(&mut self, other: &Values) {
        match (self, other) {
            (Values::Vectors { data, .. }, Values::Vectors { data: o, .. }) => data.extend_from_slice(o),
            (Values::Tokens(t), Values::Tokens(o)) => t.extend_from_slice(o),
            (Values::Images { pixels, labels, .. }, Values::Images { pixels: p, labels: l, .. }) => {
                pixels.extend_from_slice(p);
                labels.extend_from_slice(l);
            }
            _ => unreachable!("a run's rows are all of one kind: vectors, tokens or images"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Real,
    Synthetic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// Rows written together with consecutive sample ids.
#[derive(Clone, Debug)]
pub struct Block {
    pub first_id: u64,
    pub replicate: u32,
    pub generation: u32,
    pub origin: Origin,
    pub model_generation: Option<u32>,
    pub split: Split,
    pub values: Values,
}

impl Block {
    pub fn ids(&self) -> std::ops::Range<u64> {
        self.first_id..self.first_id + self.values.len() as u64
    }
}

/// Sample ids are unique in a run and stable when `replicates` grows: the
/// replicate takes the high 24 bits, a per-chain counter the low 40.
pub const ID_BITS: u32 = 40;

pub fn first_sample_id(replicate: u32) -> u64 {
    u64::from(replicate) << ID_BITS
}
