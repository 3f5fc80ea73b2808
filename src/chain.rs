//! One replicate's chain of generations. A stage takes the chain from
//! generation k to k+1: it emits D_k's rows, picks T_k by the mixing
//! policy, fits model k and samples D_{k+1}. Plain Rust, no table library,
//! so chains run in parallel and the runner gathers their output in order.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::filter::{push_groups, Decisions, InTraining, RowIds, Scores};
use crate::linalg;
use crate::metrics::text::{self as text_metrics, TextReference};
use crate::metrics::{empirical_w2, MetricName, StageNames};
use crate::mixing::part_rows;
use crate::model::{Gaussian, GaussianSettings, Model, Moments, ParamsCell};
use crate::pipeline::{MixPolicy, ModelSpec, Pipeline};
use crate::rng::{Purpose, Rng};
use crate::source::RealSource;
use crate::values::{first_sample_id, push_rows, push_run, Block, Origin, Split, Values};

pub struct Chain {
    pub replicate: u32,
    next_id: u64,
    d0: Block,
    holdout: Block,
    /// D_0's first column sorted, for the exact 1-D W2 of file data.
    d0_sorted: Option<Vec<f64>>,
    /// D_1 .. D_k; only the last is kept unless the policy needs them all.
    synthetic: Vec<Block>,
    /// File rows not yet used by this chain (file sources only).
    unused: Vec<usize>,
    /// Model 0, kept when a metric compares later models with it (gmm_l2,
    /// latent_std, gen0_ppl).
    model0: Option<Model>,
    /// The models a likelihood filter scores with: model k - 1 (`current`)
    /// or model 0 (`first`), kept only when the filter needs them.
    scorer: Option<Model>,
    /// A reward filter's scores of whole blocks, by first sample id: the
    /// runner scores every chain's newest rows in one query a generation
    /// ([`Chain::newest`], [`Chain::keep_rewards`]); other blocks (D_0,
    /// fresh rows) are scored here when first judged.
    rewards: std::cell::RefCell<std::collections::HashMap<u64, Vec<f64>>>,
    /// D_0's word types and rare n-grams (text runs).
    text_ref: Option<TextReference>,
    /// The held-out rows' moments, for Gaussian models' real_nll.
    holdout_moments: Option<Moments>,
    /// Under `accumulate` with a Gaussian model: the moments of D_0 and of
    /// every D_k so far, so model k is fitted without copying and reading
    /// the whole pool again (O(G M) over a run instead of O(G^2 M)).
    pool: Option<Moments>,
}

/// What one stage of one chain produced.
pub struct StageOut {
    pub replicate: u32,
    /// Rows that enter `samples` at this generation.
    pub blocks: Vec<Block>,
    /// T_k as runs of consecutive sample ids (start, count).
    pub training: Vec<(u64, u64)>,
    pub model: Option<(&'static str, ParamsCell)>,
    /// Metrics computed outside the table library, in a fixed order.
    pub metrics: Vec<(MetricName, f64)>,
    /// The model's weights file (safetensors), for models that have one.
    pub weights: Option<Vec<u8>>,
    /// Other files for the run directory (a command stage's log and model
    /// files), by path in the run directory.
    pub files: Vec<(std::path::PathBuf, Vec<u8>)>,
    /// The curation filter's decisions on T_k's candidates: their sample
    /// ids as runs (first, count) and what it did with each, in candidate
    /// order; `None` without a filter.
    pub filter: Option<(Vec<(u64, u64)>, Decisions)>,
}

pub struct Context<'a> {
    pub pipeline: &'a Pipeline,
    pub source: &'a RealSource,
    /// N, the real training size.
    pub n: usize,
    pub progress: &'a crate::progress::Tracker<'a>,
    pub names: StageNames,
    /// The run directory (a command stage's scratch folder is inside).
    pub root: &'a std::path::Path,
    /// How many command-stage programs may run at once.
    pub slots: &'a crate::stage::Slots,
}

impl Chain {
    /// Draws D_0 and the held-out rows.
    pub fn start(ctx: &Context, replicate: u32) -> Chain {
        let p = ctx.pipeline;
        let mut unused: Vec<usize> = (0..ctx.source.file_rows().unwrap_or(0)).collect();
        let mut rng = Rng::stream(p.seed, replicate, 0, Purpose::Holdout);
        let holdout_rows = ctx.source.holdout(&mut rng, p.data.holdout, &mut unused);
        let mut rng = Rng::stream(p.seed, replicate, 0, Purpose::RealData);
        let train_rows = ctx.source.draw(&mut rng, ctx.n, &mut unused);
        let mut next_id = first_sample_id(replicate);
        let mut block = |values: Values, split| {
            let b = Block {
                first_id: next_id,
                replicate,
                generation: 0,
                origin: Origin::Real,
                model_generation: None,
                split,
                values,
            };
            next_id += b.values.len() as u64;
            b
        };
        let d0 = block(train_rows, Split::Train);
        let holdout = block(holdout_rows, Split::Test);
        let d0_sorted = match (&d0.values, ctx.source) {
            (Values::Vectors { d: 1, data }, RealSource::File(_)) => {
                let mut s = data.clone();
                s.sort_by(f64::total_cmp);
                Some(s)
            }
            _ => None,
        };
        let text_ref = match &d0.values {
            Values::Texts { text, .. } => Some(TextReference::new(text, p.rare_ngrams)),
            _ => None,
        };
        let holdout_moments = match (&holdout.values, &p.model) {
            (Values::Vectors { d, data }, ModelSpec::Gaussian(_)) => Some(Moments::of(data, *d)),
            _ => None,
        };
        let pool = match (&p.mix, &p.model, &d0.values) {
            (MixPolicy::Accumulate, ModelSpec::Gaussian(_), Values::Vectors { d, data }) => Some(Moments::of(data, *d)),
            _ => None,
        };
        Chain {
            pool,
            replicate,
            next_id,
            d0,
            holdout,
            d0_sorted,
            synthetic: Vec::new(),
            unused,
            model0: None,
            scorer: None,
            rewards: std::cell::RefCell::new(std::collections::HashMap::new()),
            text_ref,
            holdout_moments,
        }
    }

    /// The newest synthetic rows (D_k at the start of stage k), which a
    /// reward filter will judge.
    pub fn newest(&self) -> Option<&Block> {
        self.synthetic.last()
    }

    /// Keeps the rewards of the block starting at `first_id`, dropping
    /// those of blocks the chain no longer holds.
    pub fn keep_rewards(&mut self, first_id: u64, scores: Vec<f64>) {
        let held: Vec<u64> =
            std::iter::once(self.d0.first_id).chain(self.synthetic.iter().map(|b| b.first_id)).collect();
        let rewards = self.rewards.get_mut();
        rewards.retain(|id, _| held.contains(id));
        rewards.insert(first_id, scores);
    }

    fn new_block(&mut self, generation: u32, origin: Origin, model_generation: Option<u32>, values: Values) -> Block {
        let b = Block {
            first_id: self.next_id,
            replicate: self.replicate,
            generation,
            origin,
            model_generation,
            split: Split::Train,
            values,
        };
        self.next_id += b.values.len() as u64;
        b
    }

    /// Stage k, the domain steps in order: emit D_k (D_0 and the held-out
    /// rows at k = 0; fresh real rows under `fresh`), measure it, and unless
    /// k = generations pick T_k, fit model k on it, measure the model and
    /// sample D_{k+1}. Two speed paths are named where they act: the
    /// pooled fit ([`Self::pooled_fit`]) and the hand-over of D_k
    /// ([`Self::hands_over`]); a T_k that is one whole block is borrowed,
    /// not copied ([`Self::training_set`]).
    pub fn stage(&mut self, ctx: &Context, k: u32) -> Result<StageOut> {
        let p = ctx.pipeline;
        let hand_over = self.hands_over(ctx, k);
        let (mut blocks, fresh) = self.emit(ctx, k, hand_over);
        let mut metrics = self.data_metrics(ctx, k);
        if k == p.generations {
            if hand_over {
                blocks.extend(self.synthetic.pop());
            }
            return Ok(StageOut {
                replicate: self.replicate,
                blocks,
                training: Vec::new(),
                model: None,
                metrics,
                weights: None,
                files: Vec::new(),
                filter: None,
            });
        }
        if let ModelSpec::Command(s) = &p.model {
            return self.command_stage(ctx, k, s, blocks, fresh, metrics, hand_over);
        }

        let pooled = self.pooled_fit(ctx, k);
        let set = self.training_set(ctx, k, fresh.as_ref(), pooled.is_none())?;
        metrics.extend(set.filter_metrics(&ctx.names));
        let TrainingSet { values: train, ranges, rows: train_rows, real: real_rows, filtered, files: filter_files } =
            set;
        let model = match pooled {
            Some(model) => model,
            None => {
                let mut rng = Rng::stream(p.seed, self.replicate, k, Purpose::Fit);
                let on_batch = |t| ctx.progress.training(self.replicate, t);
                Model::fit(&p.model, &train, &ctx.source.vocab(), &mut rng, &on_batch)?
            }
        };
        drop(train);
        metrics.push((ctx.names.train_rows, train_rows as f64));
        metrics.push((ctx.names.train_real_fraction, real_rows as f64 / train_rows as f64));
        self.model_metrics(ctx, &model, &mut metrics)?;

        crate::fault::pause_if(crate::fault::Point::PauseSample, k);
        let next = self.sample(ctx, k, &model)?;
        let kind = model.kind();
        let weights = model.weights()?;
        if let Some(crate::filter::FilterKind::Likelihood { model: which, .. }) = p.filter.as_ref().map(|f| &f.kind) {
            if *which == crate::filter::Scorer::Current || k == 0 {
                self.scorer = Some(model.clone());
            }
        }
        let params = self.keep_model0(k, model);
        if hand_over {
            blocks.extend(self.synthetic.pop());
        }
        if let (Some(pool), Values::Vectors { d, data }) = (&mut self.pool, &next.values) {
            *pool = pool.merge(&Moments::of(data, *d));
        }
        self.synthetic.push(next);
        Ok(StageOut {
            replicate: self.replicate,
            blocks,
            training: ranges,
            model: Some((kind, params)),
            metrics,
            weights,
            files: filter_files,
            filter: filtered.map(|f| (f.ids, f.decisions)),
        })
    }

    /// Stage k with the user's program as the model ([`crate::stage`]):
    /// T_k with its provenance to Parquet, the program run, D_{k+1} read
    /// back and tagged like any model's rows.
    #[allow(clippy::too_many_arguments)]
    fn command_stage(
        &mut self,
        ctx: &Context,
        k: u32,
        s: &crate::model::CommandSettings,
        mut blocks: Vec<Block>,
        fresh: Option<Block>,
        mut metrics: Vec<(MetricName, f64)>,
        hand_over: bool,
    ) -> Result<StageOut> {
        let p = ctx.pipeline;
        let set = self.training_set(ctx, k, fresh.as_ref(), true)?;
        metrics.extend(set.filter_metrics(&ctx.names));
        let TrainingSet { values: train, ranges, rows: train_rows, real: real_rows, filtered, files: filter_files } =
            set;
        let symbols = match ctx.source.vocab() {
            crate::model::Vocab::Symbols(s) => s as u32,
            _ => 0,
        };
        let shape = crate::data::stage_io::Shape::of(train.as_ref(), symbols);
        // Each row's provenance from the block that holds its id.
        let owners: Vec<&Block> =
            std::iter::once(&self.d0).chain(self.synthetic.iter()).chain(fresh.as_ref()).collect();
        let mut rows = crate::data::stage_io::TrainingRows {
            sample_id: Vec::with_capacity(train_rows),
            replicate: self.replicate,
            generation: Vec::with_capacity(train_rows),
            real: Vec::with_capacity(train_rows),
            model_generation: Vec::with_capacity(train_rows),
            values: train.as_ref(),
        };
        let holds = |b: &Block, id: u64| id >= b.first_id && id < b.first_id + b.values.len() as u64;
        // Ids come in runs, mostly within one block: look the owner up only
        // when a row leaves the last one (accumulate keeps every D_j).
        let mut owner: Option<&Block> = None;
        for &(start, count) in &ranges {
            for id in start..start + count {
                if !owner.is_some_and(|b| holds(b, id)) {
                    owner = owners.iter().copied().find(|b| holds(b, id));
                }
                rows.sample_id.push(id);
                rows.generation.push(owner.map_or(0, |b| b.generation));
                rows.real.push(owner.is_some_and(|b| b.origin == Origin::Real));
                rows.model_generation.push(owner.and_then(|b| b.model_generation));
            }
        }
        let seed = crate::rng::stream_seed(p.seed, self.replicate, k, Purpose::Fit);
        let tokenizer = ctx.source.tokenizer().map(|t| t.json().to_string());
        let stage = crate::stage::Stage { root: ctx.root, k, replicate: self.replicate, seed, rows, shape, tokenizer };
        let out = crate::stage::run(s, p, ctx.slots, stage)?;
        drop(train);
        let values = match (out.values, ctx.source.tokenizer()) {
            // Text rows get their ids under the run's tokenizer, as D_0's did.
            (Values::Texts { text, .. }, Some(t)) => {
                let ids = t.encode_all(&text).map_err(|e| crate::error::Error::Stage {
                    generation: k,
                    replicate: self.replicate,
                    command: s.command.join(" "),
                    log: ctx.root.join(crate::stage::log_path(k, self.replicate)),
                    message: format!("wrote text the run's tokenizer cannot encode: {e}"),
                })?;
                Values::texts(text, ids)
            }
            (v, _) => v,
        };
        metrics.push((ctx.names.train_rows, train_rows as f64));
        metrics.push((ctx.names.train_real_fraction, real_rows as f64 / train_rows as f64));
        let next = self.new_block(k + 1, Origin::Synthetic, Some(k), values);
        if hand_over {
            blocks.extend(self.synthetic.pop());
        }
        self.synthetic.push(next);
        // The previous stage's scratch held its model files for this one.
        if let Some(j) = k.checked_sub(1) {
            let _ = std::fs::remove_dir_all(crate::stage::scratch(ctx.root, j, self.replicate));
        }
        Ok(StageOut {
            replicate: self.replicate,
            blocks,
            training: ranges,
            model: Some(("command", ParamsCell::Json(out.params))),
            metrics,
            weights: None,
            files: out.files.into_iter().chain(filter_files).collect(),
            filter: filtered.map(|f| (f.ids, f.decisions)),
        })
    }

    /// Speed path: a policy that trains on D_k alone keeps only D_k
    /// (`synthetic` holds one block), so the stage moves it into its output
    /// when it ends instead of copying it when it starts.
    fn hands_over(&self, ctx: &Context, k: u32) -> bool {
        k > 0 && !ctx.pipeline.mix.keeps_all() && !self.synthetic.is_empty()
    }

    /// The rows that enter `samples` at generation k (the handed-over D_k is
    /// added when the stage ends), and generation k's fresh real rows.
    fn emit(&mut self, ctx: &Context, k: u32, hand_over: bool) -> (Vec<Block>, Option<Block>) {
        let p = ctx.pipeline;
        let mut blocks = match (k, self.synthetic.last()) {
            (0, _) | (_, None) => vec![self.d0.clone(), self.holdout.clone()],
            (_, Some(_)) if hand_over => Vec::with_capacity(2),
            (_, Some(last)) => vec![last.clone()],
        };
        let mut fresh = None;
        if let Some(r) = p.mix.fresh_draw(ctx.n, k, p.generations) {
            let mut rng = Rng::stream(p.seed, self.replicate, k, Purpose::Fresh);
            let values = ctx.source.draw(&mut rng, r, &mut self.unused);
            let b = self.new_block(k, Origin::Real, None, values);
            blocks.insert(0, b.clone());
            fresh = Some(b);
        }
        (blocks, fresh)
    }

    /// Metrics of D_k as generated that need no table library: the exact
    /// 1-D W2 to a file's D_0, image and text statistics.
    fn data_metrics(&self, ctx: &Context, k: u32) -> Vec<(MetricName, f64)> {
        let mut metrics = Vec::new();
        let current = if k == 0 { &self.d0 } else { self.synthetic.last().unwrap_or(&self.d0) };
        if let Some(sorted) = &self.d0_sorted {
            if let Values::Vectors { data, .. } = &current.values {
                let mut s = data.clone();
                s.sort_by(f64::total_cmp);
                metrics.push((ctx.names.w2, empirical_w2(sorted, &s)));
            }
        }
        if let Values::Images { h, w, pixels, .. } = &current.values {
            metrics.extend(named(crate::metrics::images::metrics(pixels, h * w)));
        }
        if let (Values::Texts { text, ids, gen0_ppl }, Some(r)) = (&current.values, &self.text_ref) {
            metrics.extend(named(text_metrics::metrics(text, ids.iter().map(Vec::len), r)));
            let ppl: Vec<f64> = gen0_ppl.iter().flatten().copied().collect();
            metrics.extend(named(text_metrics::gen0_ppl_quantiles(&ppl)));
        }
        metrics
    }

    /// Speed path: under `accumulate` a Gaussian is fitted from the running
    /// moments of D_0 and every D_k (merged as each is sampled), the same
    /// fit as from the pooled rows, without copying or reading them again.
    fn pooled_fit(&self, ctx: &Context, k: u32) -> Option<Model> {
        match (&self.pool, &ctx.pipeline.model) {
            // A filter trains on what it kept, not on the pool.
            _ if ctx.pipeline.filter.is_some() => None,
            (Some(pool), ModelSpec::Gaussian(GaussianSettings { variance })) if k > 0 => {
                Some(Model::Gaussian(Gaussian::from_moments(pool.clone(), *variance)))
            }
            _ => None,
        }
    }

    /// Model k against the held-out real rows and the true distribution,
    /// and its own metrics against model 0.
    fn model_metrics(&self, ctx: &Context, model: &Model, metrics: &mut Vec<(MetricName, f64)>) -> Result<()> {
        if !self.holdout.values.is_empty() {
            let nll = match (model, &self.holdout_moments) {
                (Model::Gaussian(g), Some(m)) => g.mean_nll_of(m),
                _ => model.mean_nll(&self.holdout.values)?,
            };
            metrics.push((ctx.names.real_nll, nll));
            if ctx.pipeline.text() {
                // Per token: the language-model figure the paper reports.
                metrics.push((ctx.names.real_ppl, nll.exp()));
            }
        }
        if let (Some(truth), Model::Gaussian(g)) = (ctx.source.truth(), model) {
            metrics.push((ctx.names.w2, linalg::gaussian_w2_squared(&g.mean, &g.cov, &truth.mean, &truth.cov).sqrt()));
        }
        metrics.extend(named(model.own_metrics(self.model0.as_ref())?));
        Ok(())
    }

    /// D_{k+1}: generate.n rows of model k.
    fn sample(&mut self, ctx: &Context, k: u32, model: &Model) -> Result<Block> {
        let p = ctx.pipeline;
        let mut rng = Rng::stream(p.seed, self.replicate, k, Purpose::Sample);
        // Best-of-K curation: K candidates for every row asked for.
        let rows = p.generated_rows();
        let mut next = match (&p.model, &self.d0.values) {
            // The paper's rows: what the model writes after each D_0 row's
            // first tokens (D_0's rows in turn).
            (ModelSpec::Transformer(s), Values::Texts { ids, .. }) if s.prompt_tokens > 0 && !ids.is_empty() => {
                let prompts: Vec<Vec<u32>> = (0..rows)
                    .map(|i| {
                        let r = &ids[i % ids.len()];
                        r[..r.len().min(s.prompt_tokens)].to_vec()
                    })
                    .collect();
                model.continue_text(&mut rng, &prompts)?
            }
            _ => model.sample(&mut rng, rows)?,
        };
        // The paper's histograms: each generated row's perplexity under the
        // model trained on real data (model 0 scores its own samples too).
        let scorer = self.model0.as_ref().unwrap_or(model);
        if let (Some(ppl), Values::Texts { gen0_ppl, .. }) = (scorer.row_ppl(&next)?, &mut next) {
            *gen0_ppl = ppl.into_iter().map(Some).collect();
        }
        Ok(self.new_block(k + 1, Origin::Synthetic, Some(k), next))
    }

    /// The model's params cell; model 0 is kept when later metrics compare
    /// with it (gmm_l2, latent_std, gen0_ppl).
    fn keep_model0(&mut self, k: u32, model: Model) -> ParamsCell {
        if k == 0 && matches!(model, Model::Gmm(_) | Model::Vae(_) | Model::Ngram(_) | Model::Transformer(_)) {
            let params = ParamsCell::Json(model.params_json());
            self.model0 = Some(model);
            params
        } else {
            ParamsCell::of(model)
        }
    }

    /// T_k: its rows (left empty unless `with_rows`), its sample ids as
    /// runs, how many rows it has and how many of them are real, and what
    /// the curation filter (if any) did with each candidate. A T_k that is
    /// one whole block (D_0 at k = 0, D_k under replace, unfiltered) is
    /// that block's rows, not a copy of them.
    fn training_set<'a>(
        &'a self,
        ctx: &Context,
        k: u32,
        fresh: Option<&'a Block>,
        with_rows: bool,
    ) -> Result<TrainingSet<'a>> {
        let p = ctx.pipeline;
        let n = ctx.n;
        if k == 0 {
            return Ok(TrainingSet {
                values: Cow::Borrowed(&self.d0.values),
                ranges: vec![(self.d0.first_id, n as u64)],
                rows: n,
                real: n,
                filtered: None,
                files: Vec::new(),
            });
        }
        let mut rng = Rng::stream(p.seed, self.replicate, k, Purpose::Mix);
        let group = p.filter.as_ref().map_or(1, |f| f.best_of() as usize);
        let mut parts = p.mix.pick(&mut rng, n, &self.d0, &self.synthetic, fresh, group);
        let (filtered, files) = match &p.filter {
            Some(f) => {
                let (filtered, files) = self.filter(ctx, f, k, &mut parts)?;
                (Some(filtered), files)
            }
            None => (None, Vec::new()),
        };
        let whole = match parts[..] {
            [(block, None)] => Some(&block.values),
            _ => None,
        };
        let with_rows = with_rows && whole.is_none();
        let mut values = self.d0.values.empty_like();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let (mut rows, mut real) = (0, 0);
        let single = parts.len() == 1;
        for (block, idx) in parts {
            let added = match idx {
                None => {
                    if with_rows {
                        values.extend(&block.values);
                    }
                    push_run(&mut ranges, block.first_id, block.values.len() as u64);
                    block.values.len()
                }
                Some(idx) => {
                    match (with_rows, single) {
                        // One part (a filtered replace): its rows, copied once.
                        (true, true) => values = block.values.select(&idx),
                        (true, false) => values.extend(&block.values.select(&idx)),
                        (false, _) => {}
                    }
                    push_rows(&mut ranges, block.first_id, &idx);
                    idx.len()
                }
            };
            rows += added;
            if block.origin == Origin::Real {
                real += added;
            }
        }
        let values = match whole {
            Some(rows) => Cow::Borrowed(rows),
            None => Cow::Owned(values),
        };
        Ok(TrainingSet { values, ranges, rows, real, filtered, files })
    }

    /// Each candidate's score where the filter judges it (`parts`' rows
    /// in order, `ids` their sample ids): its log-likelihood under the
    /// scoring model, its reward, or what the user's program said; and the
    /// files to seal (the program's log).
    fn scores(
        &self,
        ctx: &Context,
        f: &crate::filter::Filter,
        k: u32,
        parts: &[crate::mixing::Part<'_>],
        ids: &[u64],
    ) -> Result<(Scores, Files)> {
        let mut files = Vec::new();
        let mut scores = Scores::default();
        if let crate::filter::FilterKind::Reward { reward, .. } = &f.kind {
            scores.values.reserve(ids.len());
            let mut rewards = self.rewards.borrow_mut();
            for part @ (block, idx) in parts {
                // A block's rows share their origin, so the filter judges
                // all of them or none.
                if !f.judges_origin(block.origin == Origin::Real) {
                    scores.push(false, std::iter::repeat_n(0.0, part_rows(part)));
                    continue;
                }
                let all = match rewards.entry(block.first_id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(crate::data::reward::scores(reward, &block.values)?)
                    }
                };
                match idx {
                    Some(idx) => scores.push(true, idx.iter().map(|&i| all[i])),
                    None => {
                        scores.values.extend_from_slice(all);
                        scores.push_run(all.len(), true);
                    }
                }
            }
            return Ok((scores, files));
        }
        // One whole block (a replace run) is scored where it lies.
        let values = match parts {
            [(block, None)] => Cow::Borrowed(&block.values),
            _ => {
                let mut values = self.d0.values.empty_like();
                for (block, idx) in parts {
                    match idx {
                        Some(idx) => values.extend(&block.values.select(idx)),
                        None => values.extend(&block.values),
                    }
                }
                Cow::Owned(values)
            }
        };
        let rows = match &f.kind {
            crate::filter::FilterKind::Command { program, .. } => {
                let p = ctx.pipeline;
                let seed = crate::rng::stream_seed(p.seed, self.replicate, k, Purpose::Filter);
                let (scores, log) =
                    crate::stage::run_filter(program, p, ctx.slots, ctx.root, k, self.replicate, seed, ids, &values)?;
                files.push(log);
                scores
            }
            _ => {
                let model = self.scorer.as_ref().ok_or_else(|| Error::Filter {
                    generation: k,
                    replicate: self.replicate,
                    filter: f.describe(),
                    message: "has no model to score with".to_string(),
                })?;
                model.row_log_likelihoods(&values)?.ok_or_else(|| Error::Filter {
                    generation: k,
                    replicate: self.replicate,
                    filter: f.describe(),
                    message: format!("cannot score these rows with a {} model", model.kind()),
                })?
            }
        };
        // Every row was scored; a row not judged keeps none.
        if parts.iter().all(|(block, _)| f.judges_origin(block.origin == Origin::Real)) {
            let judged = if rows.is_empty() { Vec::new() } else { vec![(rows.len(), true)] };
            return Ok((Scores { values: rows, judged }, files));
        }
        scores.values.reserve(ids.len());
        let mut all = rows.into_iter();
        for part @ (block, _) in parts {
            scores.push(f.judges_origin(block.origin == Origin::Real), all.by_ref().take(part_rows(part)));
        }
        Ok((scores, files))
    }

    /// The curation filter over T_k's candidates (`parts`, as the policy
    /// picked them): each part keeps the rows the filter kept, a row as
    /// many times as it was drawn, in candidate order. Returns the
    /// candidates and the filter's decisions for the `filter` table.
    fn filter(
        &self,
        ctx: &Context,
        f: &crate::filter::Filter,
        k: u32,
        parts: &mut [crate::mixing::Part<'_>],
    ) -> Result<(Filtered, Files)> {
        let p = ctx.pipeline;
        let total: usize = parts.iter().map(part_rows).sum();
        let mut ids = Vec::new();
        let mut spans = Vec::with_capacity(parts.len());
        for part @ (block, idx) in parts.iter() {
            match idx {
                Some(idx) => push_rows(&mut ids, block.first_id, idx),
                None => push_run(&mut ids, block.first_id, block.values.len() as u64),
            }
            spans.push((part_rows(part), block.origin == Origin::Real));
        }
        let problem =
            |message: String| Error::Filter { generation: k, replicate: self.replicate, filter: f.describe(), message };
        let none_kept = || problem(format!("kept none of model {k}'s {total} candidate rows"));
        let (decisions, files) = if f.scores() {
            let mut sample_ids = Vec::with_capacity(total);
            for &(first, count) in &ids {
                sample_ids.extend(first..first + count);
            }
            let (scores, files) = self.scores(ctx, f, k, parts, &sample_ids)?;
            // Best-of groups: the newest block's rows, a part at a time.
            let mut groups = Vec::new();
            if f.best_of() > 1 {
                let newest = self.synthetic.last().map(|b| (b.first_id, b.values.len() as u64));
                groups.reserve(total);
                for (block, idx) in parts.iter() {
                    let (real, len) = (block.origin == Origin::Real, block.values.len());
                    push_groups(f.best_of(), newest, block.first_id, real, idx.as_deref(), len, &mut groups);
                }
            }
            let decisions = f.judge(p.seed, self.replicate, k, &sample_ids, scores, &groups).ok_or_else(none_kept)?;
            (decisions, files)
        } else {
            // A detector flags a block's rows by their ids alone: no
            // candidate list, the flags written a part at a time.
            let stream = crate::rng::stream_seed(p.seed, self.replicate, k, Purpose::Filter);
            let mut flagged = Vec::with_capacity(total);
            for (block, idx) in parts.iter() {
                let (real, first) = (block.origin == Origin::Real, block.first_id);
                let ids = match idx {
                    Some(idx) => RowIds::Picked { first, idx },
                    None => RowIds::Run { first, len: block.values.len() as u64 },
                };
                f.flag_rows(stream, real, ids, &mut flagged);
            }
            (f.detect(p.seed, self.replicate, k, flagged).ok_or_else(none_kept)?, Vec::new())
        };
        let kept = decisions.kept();
        let min = p.min_train_rows();
        if kept < min {
            return Err(problem(format!(
                "kept {kept} distinct rows of {total}; model {k} ({}) needs at least {min}",
                p.model.name()
            )));
        }
        let mut at = 0;
        for part in parts.iter_mut() {
            let len = part_rows(part);
            let (_, idx) = part;
            let row = |j: usize| idx.as_ref().map_or(j, |idx| idx[j]);
            let keep: Vec<usize> = if decisions.copies.is_empty() {
                // Drop: the unflagged rows, once each.
                let flags = &decisions.flagged[at..at + len];
                match idx {
                    Some(idx) => unflagged(flags, idx.iter().copied()),
                    None => unflagged(flags, 0..len),
                }
            } else {
                let copies = &decisions.copies[at..at + len];
                (0..len).flat_map(|j| std::iter::repeat_n(row(j), copies[j] as usize)).collect()
            };
            at += len;
            *idx = Some(keep);
        }
        Ok((Filtered { spans, ids, decisions }, files))
    }
}

/// The `rows` whose flag is not set, in order. Every row is written and
/// the end moved past the unflagged ones: no branch on a flag, which is a
/// coin flip.
fn unflagged(flags: &[bool], rows: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut keep = vec![0; flags.len()];
    let mut n = 0;
    for (&flag, row) in flags.iter().zip(rows) {
        // n counts the unflagged rows before this one: below flags.len().
        keep[n] = row;
        n += usize::from(!flag);
    }
    keep.truncate(n);
    keep
}

/// T_k's candidates (their ids as runs, for the `filter` table) and what
/// the filter did with each.
struct Filtered {
    /// The candidates a part at a time: how many, and whether real.
    spans: Vec<(usize, bool)>,
    ids: Vec<(u64, u64)>,
    decisions: Decisions,
}

/// Files for the run directory, by path in it.
type Files = Vec<(std::path::PathBuf, Vec<u8>)>;

/// Model k's training set (see [`Chain::training_set`]).
struct TrainingSet<'a> {
    values: Cow<'a, Values>,
    ranges: Vec<(u64, u64)>,
    rows: usize,
    real: usize,
    /// The candidates and the filter's decisions; `None` without a filter.
    filtered: Option<Filtered>,
    /// A command filter's logs, sealed with the generation.
    files: Files,
}

impl TrainingSet<'_> {
    /// The filter's metrics of this T_k: rows kept (distinct), the real
    /// share of them, and the detector's realized rates over the rows it
    /// judged (each only where it judged some).
    fn filter_metrics(&self, names: &StageNames) -> Vec<(MetricName, f64)> {
        let Some(Filtered { spans, decisions, .. }) = &self.filtered else { return Vec::new() };
        // Counted a part at a time (a part's rows share their origin), each
        // a plain count over a slice.
        let (mut total, mut real, mut flagged, mut real_flagged, mut kept, mut kept_real) = (0usize, 0, 0, 0, 0, 0);
        let in_training = decisions.in_training();
        for &(len, is_real) in spans {
            let range = total..total + len;
            let f = decisions.flagged[range.clone()].iter().filter(|&&f| f).count();
            let n = match in_training {
                InTraining::Unflagged(_) => len - f,
                InTraining::Copies(copies) => copies[range].iter().filter(|&&c| c > 0).count(),
            };
            total += len;
            flagged += f;
            kept += n;
            if is_real {
                real += len;
                real_flagged += f;
                kept_real += n;
            }
        }
        let (syn, syn_flagged) = (total - real, flagged - real_flagged);
        let mut out =
            vec![(names.filter_kept, kept as f64), (names.filter_kept_real_fraction, kept_real as f64 / kept as f64)];
        if syn > 0 {
            out.push((names.filter_tpr, syn_flagged as f64 / syn as f64));
        }
        if real > 0 {
            out.push((names.filter_fpr, real_flagged as f64 / real as f64));
        }
        out
    }
}

/// Metrics of the image, text and mixture models, whose names are made per
/// stage (a few rows a generation), as shared names.
fn named(metrics: Vec<(String, f64)>) -> impl Iterator<Item = (MetricName, f64)> {
    metrics.into_iter().map(|(m, v)| (m.into(), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_when_adjacent() {
        let mut r = Vec::new();
        push_run(&mut r, 5, 2);
        push_run(&mut r, 7, 1);
        push_run(&mut r, 9, 3);
        push_run(&mut r, 12, 0);
        assert_eq!(r, vec![(5, 3), (9, 3)]);
    }

    proptest::proptest! {
        /// A run at a time makes the runs a row at a time does: repeated
        /// rows (copies), gaps, steps back, a run that joins the last.
        #[test]
        fn rows_push_as_their_runs(idx in proptest::collection::vec(0usize..40, 0..60), first in 0u64..100) {
            let mut a = vec![(first + 3, 2)];
            let mut b = a.clone();
            crate::values::push_rows(&mut a, first + 5, &idx);
            for &i in &idx {
                push_run(&mut b, first + 5 + i as u64, 1);
            }
            proptest::prop_assert_eq!(a, b);
        }
    }
}
