-- The differential corpus: each query runs through `collapse query` and
-- through DuckDB on the same run directories (tests/it/sql.rs). A query
-- either gives DuckDB's answer or is refused with exit 2 and a reason.
--
-- Format: a header line `-- @name [runs=a,b] [ordered]`, then the SQL up to
-- a line that ends with `;`. runs: gaussian, accumulate, text, image, study
-- (default: gaussian and accumulate). `ordered`: rows compared in order
-- (the query's ORDER BY must decide every row); otherwise as a multiset.

-- @count_samples runs=gaussian,accumulate,text,image
SELECT count(*) AS n FROM samples;

-- @count_per_generation runs=gaussian,accumulate,text,image
SELECT generation, count(*) AS n FROM samples GROUP BY generation;

-- @origin_split_counts runs=gaussian,accumulate,text,image
SELECT origin, split, count(*) AS n FROM samples GROUP BY origin, split;

-- @min_max_x0
SELECT min(x0), max(x0) FROM samples;

-- @exponent_literals
SELECT count(*) AS n, sum(CASE WHEN abs(x0) < 1e308 THEN 1 ELSE 0 END) AS finite, sum(CASE WHEN x0 > 5E-1 THEN 1 ELSE 0 END) AS above FROM samples;

-- @min_max_x0_aliased
SELECT min(x0) AS lo, max(x0) AS hi FROM samples;

-- @moments_per_generation ordered
SELECT generation, avg(x0) AS mean, var_samp(x0) AS var, stddev_samp(x0) AS sd FROM samples WHERE split = 'train' GROUP BY generation ORDER BY generation;

-- @var_metric_by_generation ordered
SELECT generation, avg(value) AS v FROM metrics WHERE metric = 'var' GROUP BY generation ORDER BY generation;

-- @join_on_one_side_filter
SELECT count(*) AS n FROM metrics m JOIN metrics g0 ON m.replicate = g0.replicate AND g0.generation = 0 WHERE m.metric = 'var' AND m.generation = 5;

-- @join_on_both_sides_filter
SELECT count(*) AS n FROM metrics m JOIN metrics g0 ON m.replicate = g0.replicate AND g0.generation = 0 AND m.metric = g0.metric WHERE m.generation = 5;

-- @join_filter_in_where
SELECT count(*) AS n FROM metrics m JOIN metrics g0 ON m.replicate = g0.replicate WHERE g0.generation = 0 AND m.metric = 'var' AND m.generation = 5;

-- @variance_relative_to_gen0 ordered
SELECT m.replicate, m.value / g0.value AS ratio FROM metrics m JOIN metrics g0 ON m.replicate = g0.replicate AND g0.generation = 0 AND g0.metric = 'var' WHERE m.metric = 'var' AND m.generation = 5 ORDER BY m.replicate;

-- @join_on_literal_left_side
SELECT count(*) AS n FROM metrics m JOIN metrics g0 ON m.replicate = g0.replicate AND m.generation = 3 AND g0.generation = 0 AND m.metric = g0.metric;

-- @join_on_range_condition
SELECT count(*) AS n FROM metrics a JOIN metrics b ON a.replicate = b.replicate AND a.metric = b.metric AND b.generation = a.generation + 1 WHERE a.metric = 'mean';

-- @join_on_or_condition
SELECT count(*) AS n FROM metrics a JOIN metrics b ON a.replicate = b.replicate AND (b.generation = 0 OR b.generation = 1) WHERE a.metric = 'var' AND b.metric = 'var';

-- @join_using
SELECT count(*) AS n FROM metrics a JOIN metrics b USING (replicate, generation, metric) WHERE a.metric = 'var';

-- @join_using_columns ordered
SELECT replicate, generation, a.value AS v FROM metrics a JOIN metrics b USING (replicate, generation, metric) WHERE metric = 'var' AND generation = 2 ORDER BY replicate;

-- @join_three_tables
SELECT count(*) AS n FROM training t JOIN samples s ON s.sample_id = t.sample_id JOIN models m ON m.replicate = t.replicate AND m.model_generation = t.model_generation;

-- @training_origin_mix
SELECT t.model_generation, s.origin, count(*) AS n FROM training t JOIN samples s ON s.sample_id = t.sample_id GROUP BY t.model_generation, s.origin;

-- @training_origin_mix_filter_in_on
SELECT t.model_generation, count(*) AS n FROM training t JOIN samples s ON s.sample_id = t.sample_id AND s.origin = 'real' GROUP BY t.model_generation;

-- @left_join_right_filter_in_on
SELECT count(*) AS n, count(g0.value) AS matched FROM metrics m LEFT JOIN metrics g0 ON m.replicate = g0.replicate AND m.metric = g0.metric AND g0.generation = 0 WHERE m.metric = 'var';

-- @left_join_left_filter_in_on
SELECT count(*) AS n, count(g0.value) AS matched FROM metrics m LEFT JOIN metrics g0 ON m.replicate = g0.replicate AND m.metric = g0.metric AND m.generation = 0 WHERE m.metric = 'var';

-- @left_join_no_match
SELECT count(*) AS n, count(b.value) AS matched FROM metrics a LEFT JOIN metrics b ON a.replicate = b.replicate AND a.metric = b.metric AND b.generation = a.generation + 1000 WHERE a.metric = 'mean';

-- @left_join_is_null
SELECT count(*) AS n FROM samples s LEFT JOIN training t ON s.sample_id = t.sample_id WHERE t.sample_id IS NULL;

-- @left_join_coalesce ordered
SELECT s.generation, sum(coalesce(t.model_generation, 0)) AS z, count(*) AS n FROM samples s LEFT JOIN training t ON s.sample_id = t.sample_id AND t.model_generation = 0 WHERE s.generation <= 1 GROUP BY s.generation ORDER BY s.generation;

-- @right_join
SELECT count(*) AS n FROM metrics g0 RIGHT JOIN metrics m ON m.replicate = g0.replicate AND m.metric = g0.metric AND m.generation = g0.generation + 1 WHERE m.metric = 'var';

-- @full_join
SELECT count(*) AS n FROM (SELECT * FROM metrics WHERE metric = 'var' AND generation < 3) a FULL JOIN (SELECT * FROM metrics WHERE metric = 'var' AND generation > 1) b ON a.replicate = b.replicate AND a.generation = b.generation;

-- @cross_join_small
SELECT count(*) AS n FROM (SELECT DISTINCT replicate FROM metrics) a CROSS JOIN (SELECT DISTINCT generation FROM metrics) b;

-- @semi_join_in
SELECT count(*) AS n FROM samples WHERE sample_id IN (SELECT sample_id FROM training WHERE model_generation = 1);

-- @anti_join_not_in
SELECT count(*) AS n FROM samples WHERE generation = 1 AND sample_id NOT IN (SELECT sample_id FROM training WHERE model_generation = 1);

-- @exists_correlated
SELECT count(*) AS n FROM models m WHERE EXISTS (SELECT 1 FROM training t WHERE t.replicate = m.replicate AND t.model_generation = m.model_generation);

-- @not_exists_correlated
SELECT count(*) AS n FROM samples s WHERE s.generation = 1 AND NOT EXISTS (SELECT 1 FROM training t WHERE t.sample_id = s.sample_id);

-- @scalar_subquery_in_select ordered
SELECT generation, avg(value) / (SELECT avg(value) FROM metrics WHERE metric = 'var' AND generation = 0) AS rel FROM metrics WHERE metric = 'var' GROUP BY generation ORDER BY generation;

-- @scalar_subquery_in_where
SELECT count(*) AS n FROM metrics WHERE metric = 'var' AND value > (SELECT avg(value) FROM metrics WHERE metric = 'var');

-- @correlated_scalar_subquery ordered
SELECT m.replicate, m.generation, m.value - (SELECT g.value FROM metrics g WHERE g.replicate = m.replicate AND g.metric = 'var' AND g.generation = 0) AS dv FROM metrics m WHERE m.metric = 'var' AND m.generation = 4 ORDER BY m.replicate;

-- @in_list
SELECT metric, count(*) AS n FROM metrics WHERE metric IN ('var', 'mean') GROUP BY metric;

-- @not_in_list
SELECT count(*) AS n FROM metrics WHERE metric NOT IN ('var', 'mean');

-- @cte_simple ordered
WITH v AS (SELECT replicate, generation, value FROM metrics WHERE metric = 'var') SELECT generation, max(value) AS hi FROM v GROUP BY generation ORDER BY generation;

-- @cte_two_joined ordered
WITH v AS (SELECT replicate, generation, value FROM metrics WHERE metric = 'var'), g0 AS (SELECT replicate, value AS v0 FROM v WHERE generation = 0) SELECT v.generation, avg(v.value / g0.v0) AS rel FROM v JOIN g0 ON v.replicate = g0.replicate GROUP BY v.generation ORDER BY v.generation;

-- @cte_used_twice
WITH v AS (SELECT replicate, generation, value FROM metrics WHERE metric = 'var') SELECT count(*) AS n FROM v a JOIN v b ON a.replicate = b.replicate AND a.generation = b.generation;

-- @window_row_number ordered
SELECT replicate, generation, value, row_number() OVER (PARTITION BY replicate ORDER BY value DESC) AS rk FROM metrics WHERE metric = 'var' AND generation <= 3 ORDER BY replicate, rk;

-- @window_rank ordered
SELECT replicate, generation, rank() OVER (PARTITION BY generation ORDER BY value) AS r FROM metrics WHERE metric = 'var' ORDER BY generation, r, replicate;

-- @window_lag ordered
SELECT replicate, generation, value - lag(value) OVER (PARTITION BY replicate ORDER BY generation) AS step FROM metrics WHERE metric = 'var' ORDER BY replicate, generation;

-- @window_lead ordered
SELECT replicate, generation, lead(value, 1) OVER (PARTITION BY replicate ORDER BY generation) AS nxt FROM metrics WHERE metric = 'mean' ORDER BY replicate, generation;

-- @window_first_value ordered
SELECT replicate, generation, value / first_value(value) OVER (PARTITION BY replicate ORDER BY generation) AS rel FROM metrics WHERE metric = 'var' ORDER BY replicate, generation;

-- @window_partition_avg ordered
SELECT replicate, generation, value - avg(value) OVER (PARTITION BY generation) AS dev FROM metrics WHERE metric = 'var' ORDER BY generation, replicate;

-- @window_running_sum ordered
SELECT replicate, generation, sum(value) OVER (PARTITION BY replicate ORDER BY generation) AS run FROM metrics WHERE metric = 'var' ORDER BY replicate, generation;

-- @window_over_aggregate ordered
SELECT generation, avg(value) AS v, avg(value) / max(avg(value)) OVER () AS rel FROM metrics WHERE metric = 'var' GROUP BY generation ORDER BY generation;

-- @window_rank_over_aggregate ordered
SELECT replicate, avg(value) AS v, rank() OVER (ORDER BY avg(value) DESC) AS r FROM metrics WHERE metric = 'var' GROUP BY replicate ORDER BY r, replicate;

-- @window_count_over_partition ordered
SELECT DISTINCT generation, count(*) OVER (PARTITION BY generation) AS n FROM samples ORDER BY generation;

-- @median_per_generation ordered
SELECT generation, median(value) AS med FROM metrics WHERE metric = 'var' GROUP BY generation ORDER BY generation;

-- @quantile_cont ordered
SELECT generation, quantile_cont(x0, 0.9) AS q90 FROM samples WHERE split = 'train' GROUP BY generation ORDER BY generation;

-- @quantile_disc ordered
SELECT generation, quantile_disc(x0, 0.1) AS q10 FROM samples WHERE split = 'train' GROUP BY generation ORDER BY generation;

-- @case_when
SELECT CASE WHEN x0 < -2 THEN 'low' WHEN x0 > 2 THEN 'high' ELSE 'mid' END AS band, count(*) AS n FROM samples GROUP BY band;

-- @case_in_aggregate ordered
SELECT generation, sum(CASE WHEN abs(x0) > 2 THEN 1 ELSE 0 END) AS tails, count(*) AS n FROM samples GROUP BY generation ORDER BY generation;

-- @case_simple_form
SELECT CASE origin WHEN 'real' THEN 1 ELSE 0 END AS is_real, count(*) AS n FROM samples GROUP BY is_real;

-- @filter_clause_like ordered
SELECT generation, avg(CASE WHEN origin = 'real' THEN 1.0 ELSE 0.0 END) AS real_share FROM samples GROUP BY generation ORDER BY generation;

-- @group_by_all
SELECT generation, origin, count(*) AS n FROM samples GROUP BY ALL;

-- @group_by_ordinal
SELECT generation, count(*) AS n FROM samples GROUP BY 1;

-- @group_by_expression
SELECT generation % 2 AS parity, count(*) AS n FROM samples GROUP BY generation % 2;

-- @having
SELECT replicate, avg(value) AS v FROM metrics WHERE metric = 'var' GROUP BY replicate HAVING avg(value) < 1.0;

-- @having_count
SELECT generation, count(*) AS n FROM samples GROUP BY generation HAVING count(*) > 0;

-- @having_alias_free
SELECT metric, count(*) AS n FROM metrics GROUP BY metric HAVING max(value) > 0;

-- @order_limit ordered
SELECT replicate, generation, value FROM metrics WHERE metric = 'var' ORDER BY value DESC, replicate, generation LIMIT 5;

-- @order_limit_offset ordered
SELECT replicate, generation, value FROM metrics WHERE metric = 'var' ORDER BY value, replicate, generation LIMIT 5 OFFSET 3;

-- @order_nulls ordered
SELECT sample_id, model_generation FROM samples WHERE generation <= 1 ORDER BY model_generation NULLS FIRST, sample_id LIMIT 10;

-- @order_by_alias ordered
SELECT generation AS g, count(*) AS n FROM samples GROUP BY generation ORDER BY g DESC;

-- @distinct
SELECT DISTINCT metric FROM metrics;

-- @count_distinct
SELECT count(DISTINCT metric) AS n, count(DISTINCT replicate) AS r FROM metrics;

-- @string_functions
SELECT upper(origin) AS o, length(split) AS l, count(*) AS n FROM samples GROUP BY upper(origin), length(split);

-- @string_like
SELECT count(*) AS n FROM metrics WHERE metric LIKE 'tail_mass%';

-- @string_concat
SELECT DISTINCT origin || '/' || split AS tag FROM samples;

-- @string_substr
SELECT DISTINCT substr(metric, 1, 4) AS p FROM metrics;

-- @string_replace_lower
SELECT DISTINCT lower(replace(metric, '_', '-')) AS m FROM metrics;

-- @starts_with
SELECT count(*) AS n FROM metrics WHERE starts_with(metric, 'tail');

-- @cast_to_int
SELECT CAST(floor(x0) AS INTEGER) AS bin, count(*) AS n FROM samples WHERE split = 'train' GROUP BY bin;

-- @cast_to_varchar
SELECT DISTINCT CAST(generation AS VARCHAR) AS g FROM samples;

-- @cast_double_arith ordered
SELECT generation, CAST(count(*) AS DOUBLE) / 1000 AS k FROM samples GROUP BY generation ORDER BY generation;

-- @round_abs_sqrt ordered
SELECT generation, round(avg(abs(x0)), 6) AS a, sqrt(avg(x0 * x0)) AS rms FROM samples GROUP BY generation ORDER BY generation;

-- @ln_exp_power ordered
SELECT generation, avg(ln(value)) AS l, avg(power(value, 2)) AS p2 FROM metrics WHERE metric = 'var' GROUP BY generation ORDER BY generation;

-- @greatest_least
SELECT max(greatest(x0, 0.0)) AS hi, min(least(x0, 0.0)) AS lo FROM samples;

-- @union_all
SELECT 'var' AS k, count(*) AS n FROM metrics WHERE metric = 'var' UNION ALL SELECT 'mean' AS k, count(*) AS n FROM metrics WHERE metric = 'mean';

-- @union_distinct
SELECT replicate FROM metrics WHERE generation = 0 UNION SELECT replicate FROM training_runs;

-- @union_in_subquery
SELECT count(*) AS n FROM (SELECT sample_id FROM training WHERE model_generation = 0 UNION SELECT sample_id FROM training WHERE model_generation = 1) u;

-- @except
SELECT sample_id FROM samples WHERE generation = 1 EXCEPT SELECT sample_id FROM training;

-- @intersect
SELECT count(*) AS n FROM (SELECT sample_id FROM samples WHERE generation = 1 INTERSECT SELECT sample_id FROM training) i;

-- @subquery_in_from ordered
SELECT g, avg(v) AS mv FROM (SELECT generation AS g, value AS v FROM metrics WHERE metric = 'var') t GROUP BY g ORDER BY g;

-- @nested_subqueries
SELECT count(*) AS n FROM (SELECT * FROM (SELECT * FROM samples WHERE generation = 2) a WHERE x0 > 0) b;

-- @between
SELECT count(*) AS n FROM samples WHERE x0 BETWEEN -1 AND 1;

-- @is_null_counts runs=gaussian,accumulate,text,image
SELECT count(*) AS n, count(model_generation) AS with_model FROM samples;

-- @coalesce_null runs=gaussian,accumulate,text,image
SELECT coalesce(model_generation, -1) AS mg, count(*) AS n FROM samples GROUP BY mg;

-- @training_runs_sum runs=gaussian,accumulate,text,image ordered
SELECT model_generation, sum(sample_count) AS rows FROM training_runs GROUP BY model_generation ORDER BY model_generation;

-- @training_count runs=gaussian,accumulate,text,image
SELECT count(*) AS n FROM training;

-- @training_per_model runs=gaussian,accumulate,text,image
SELECT replicate, model_generation, count(*) AS n FROM training GROUP BY replicate, model_generation;

-- @models_kinds runs=gaussian,accumulate,text,image
SELECT kind, count(*) AS n FROM models GROUP BY kind;

-- @models_hash_length runs=gaussian,accumulate,text,image
SELECT DISTINCT length(blake3) AS l FROM models;

-- @metrics_names runs=gaussian,accumulate,text,image
SELECT metric, count(*) AS n FROM metrics GROUP BY metric;

-- @real_share_per_model ordered
SELECT t.model_generation, avg(CASE WHEN s.origin = 'real' THEN 1.0 ELSE 0.0 END) AS real_share FROM training t JOIN samples s ON s.sample_id = t.sample_id GROUP BY t.model_generation ORDER BY t.model_generation;

-- @tail_share_vs_gen0 ordered
WITH q AS (SELECT replicate, quantile_cont(x0, 0.99) AS q99 FROM samples WHERE generation = 0 AND split = 'train' GROUP BY replicate) SELECT s.generation, avg(CASE WHEN s.x0 > q.q99 THEN 1.0 ELSE 0.0 END) AS share FROM samples s JOIN q ON s.replicate = q.replicate WHERE s.split = 'train' GROUP BY s.generation ORDER BY s.generation;

-- @text_length runs=text ordered
SELECT generation, avg(length(text)) AS chars FROM samples GROUP BY generation ORDER BY generation;

-- @text_distinct_rows runs=text ordered
SELECT generation, count(DISTINCT text) AS d FROM samples GROUP BY generation ORDER BY generation;

-- @text_like runs=text
SELECT count(*) AS n FROM samples WHERE text LIKE '%the%';

-- @text_gen0_ppl runs=text ordered
SELECT generation, median(gen0_ppl) AS p FROM samples WHERE gen0_ppl IS NOT NULL GROUP BY generation ORDER BY generation;

-- @image_labels runs=image
SELECT label, count(*) AS n FROM samples WHERE label IS NOT NULL GROUP BY label;

-- @image_shape runs=image
SELECT DISTINCT height, width FROM samples;

-- @image_bytes runs=image
SELECT count(*) AS n, sum(octet_length(pixels)) AS bytes FROM samples;

-- @scalar_rewritten_as_cross_join ordered
SELECT m.generation, avg(m.value) / g.v0 AS rel FROM metrics m CROSS JOIN (SELECT avg(value) AS v0 FROM metrics WHERE metric = 'var' AND generation = 0) g WHERE m.metric = 'var' GROUP BY m.generation, g.v0 ORDER BY m.generation;

-- @window_over_cte_aggregate ordered
WITH g AS (SELECT generation, avg(value) AS v FROM metrics WHERE metric = 'var' GROUP BY generation) SELECT generation, v / max(v) OVER () AS rel FROM g ORDER BY generation;

-- @dense_rank ordered
SELECT replicate, generation, dense_rank() OVER (PARTITION BY replicate ORDER BY generation) AS r FROM metrics WHERE metric = 'var' ORDER BY replicate, generation;

-- @left_join_left_literal_in_on ordered
SELECT m.generation, count(g0.value) AS matched, count(*) AS n FROM metrics m LEFT JOIN metrics g0 ON m.replicate = g0.replicate AND m.metric = g0.metric AND g0.generation = 0 AND m.generation > 2 WHERE m.metric = 'var' GROUP BY m.generation ORDER BY m.generation;

-- @left_join_derived_right ordered
SELECT m.generation, count(g.v) AS matched FROM metrics m LEFT JOIN (SELECT replicate, value AS v, generation FROM metrics WHERE metric = 'var') g ON m.replicate = g.replicate AND g.generation = 1 WHERE m.metric = 'mean' GROUP BY m.generation ORDER BY m.generation;

-- @two_left_joins ordered
SELECT m.generation, count(a.value) AS ca, count(b.value) AS cb FROM metrics m LEFT JOIN metrics a ON a.replicate = m.replicate AND a.metric = m.metric AND a.generation = 0 LEFT JOIN metrics b ON b.replicate = m.replicate AND b.metric = m.metric AND b.generation = 1 WHERE m.metric = 'var' GROUP BY m.generation ORDER BY m.generation;

-- @join_filter_inside_cte ordered
WITH r AS (SELECT m.generation AS g, m.value / g0.value AS ratio FROM metrics m JOIN metrics g0 ON m.replicate = g0.replicate AND g0.generation = 0 AND g0.metric = 'var' WHERE m.metric = 'var') SELECT g, avg(ratio) AS r FROM r GROUP BY g ORDER BY g;

-- @join_filter_inside_subquery
SELECT count(*) AS n FROM (SELECT m.replicate FROM metrics m JOIN metrics g0 ON m.replicate = g0.replicate AND g0.generation = 0 WHERE m.generation = 1) t;

-- @join_or_across_sides
SELECT count(*) AS n FROM metrics a JOIN metrics b ON a.replicate = b.replicate AND (a.generation = 0 OR b.generation = 0) WHERE a.metric = 'var' AND b.metric = 'var';

-- @join_constant_true
SELECT count(*) AS n FROM metrics a JOIN metrics b ON a.replicate = b.replicate AND 1 = 1 WHERE a.metric = 'var' AND b.metric = 'var' AND a.generation = 0;

-- @join_in_list_one_side
SELECT count(*) AS n FROM metrics a JOIN metrics b ON a.replicate = b.replicate AND a.metric = b.metric AND b.generation IN (0, 1) WHERE a.metric = 'var';

-- @join_between_one_side
SELECT count(*) AS n FROM training t JOIN samples s ON s.sample_id = t.sample_id AND s.x0 BETWEEN -1 AND 1;

-- @self_join_generation_step ordered
SELECT a.generation, avg(b.value - a.value) AS d FROM metrics a JOIN metrics b ON a.replicate = b.replicate AND b.generation = a.generation + 1 AND b.metric = a.metric WHERE a.metric = 'var' GROUP BY a.generation ORDER BY a.generation;

-- @right_join_one_side_filter
SELECT count(*) AS n FROM metrics g0 RIGHT JOIN metrics m ON m.replicate = g0.replicate AND m.metric = g0.metric AND g0.generation = 0 WHERE m.metric = 'var';

-- @full_join_one_side_filter
SELECT count(*) AS n FROM (SELECT * FROM metrics WHERE metric = 'var') a FULL JOIN (SELECT * FROM metrics WHERE metric = 'var') b ON a.replicate = b.replicate AND a.generation = b.generation AND b.generation = 0;

-- @union_all_ordered ordered
SELECT generation, 'samples' AS t, count(*) AS n FROM samples GROUP BY generation UNION ALL SELECT generation, 'metrics' AS t, count(*) AS n FROM metrics GROUP BY generation ORDER BY generation, t;

-- @limit_without_order_count
SELECT count(*) AS n FROM (SELECT * FROM samples LIMIT 7) t;

-- @json_params_length runs=gaussian
SELECT model_generation, avg(length(params)) AS l FROM models GROUP BY model_generation;

-- @cast_bigint_sample_id
SELECT max(CAST(sample_id AS BIGINT)) AS m FROM samples;

-- @nullif_division ordered
SELECT generation, sum(value) / nullif(count(*), 0) AS mean FROM metrics WHERE metric = 'var' GROUP BY generation ORDER BY generation;

-- @group_key_in_aggregate_expression ordered
SELECT generation, avg(value) / (generation + 1) AS r FROM metrics WHERE metric = 'var' GROUP BY generation ORDER BY generation;

-- @group_key_in_plain_expression ordered
SELECT generation, generation * 10 AS g10, count(*) AS n FROM metrics GROUP BY generation ORDER BY generation;

-- @two_group_keys_in_expression ordered
SELECT replicate, generation, replicate * 100 + generation AS code, count(*) AS n FROM metrics GROUP BY replicate, generation ORDER BY replicate, generation;

-- @training_count_filtered runs=gaussian,accumulate,text,image
SELECT count(*) AS n FROM training WHERE model_generation >= 1 AND replicate = 0;

-- @training_count_grouped_all runs=gaussian,accumulate,text,image
SELECT model_generation, count(sample_id) AS n FROM training GROUP BY ALL;

-- @training_membership runs=gaussian,accumulate
SELECT model_generation, count(*) AS n FROM training WHERE sample_id = 3 GROUP BY model_generation;

-- @training_membership_absent runs=gaussian,accumulate
SELECT count(*) AS n FROM training WHERE sample_id = 999999999999;

-- @training_count_empty runs=gaussian,accumulate
SELECT count(*) AS n FROM training WHERE model_generation > 100000;

-- @training_distinct_samples runs=gaussian,accumulate
SELECT count(DISTINCT sample_id) AS n FROM training;

-- @right_join_one_side_matched ordered
SELECT m.generation, count(g0.value) AS matched, count(*) AS n FROM metrics g0 RIGHT JOIN metrics m ON m.replicate = g0.replicate AND m.metric = g0.metric AND g0.generation = 0 WHERE m.metric = 'var' GROUP BY m.generation ORDER BY m.generation;

-- @right_join_preserved_side_filter ordered
SELECT m.generation, count(g0.value) AS matched, count(*) AS n FROM metrics g0 RIGHT JOIN metrics m ON m.replicate = g0.replicate AND m.metric = g0.metric AND m.generation > 2 WHERE m.metric = 'var' GROUP BY m.generation ORDER BY m.generation;

-- @full_join_one_side_matched
SELECT count(a.value) AS ca, count(b.value) AS cb, count(*) AS n FROM (SELECT * FROM metrics WHERE metric = 'var') a FULL JOIN (SELECT * FROM metrics WHERE metric = 'var') b ON a.replicate = b.replicate AND a.generation = b.generation AND b.generation = 0;

-- Across a study (runs=study): every table has a `cell` column, and `runs`
-- has one row per cell with its swept keys.

-- @study_runs runs=study
SELECT cell, "generate.n", "mix.policy", seed FROM runs;

-- @study_var_by_key_group_by_all runs=study
SELECT r."generate.n", m.generation, avg(m.value) AS v FROM metrics m JOIN runs r USING (cell) WHERE m.metric = 'var' GROUP BY ALL;

-- @study_var_by_policy_and_n ordered runs=study
SELECT r."mix.policy" AS policy, r."generate.n" AS n, avg(m.value) AS v, count(*) AS k FROM metrics m JOIN runs r ON m.cell = r.cell WHERE m.metric = 'var' AND m.generation = 4 GROUP BY r."mix.policy", r."generate.n" ORDER BY policy, n;

-- @study_samples_per_cell runs=study
SELECT cell, count(*) AS n FROM samples GROUP BY cell;

-- @study_samples_by_policy_generation ordered runs=study
SELECT r."mix.policy" AS policy, s.generation, count(*) AS n, avg(s.x0) AS mean FROM samples s JOIN runs r ON s.cell = r.cell WHERE s.split = 'train' GROUP BY r."mix.policy", s.generation ORDER BY policy, s.generation;

-- @study_training_rows_per_cell runs=study
SELECT cell, model_generation, count(*) AS n FROM training GROUP BY cell, model_generation;

-- @study_training_runs_sum runs=study
SELECT cell, sum(sample_count) AS rows FROM training_runs GROUP BY cell;

-- @study_models_per_cell runs=study
SELECT cell, count(*) AS n, max(model_generation) AS last FROM models GROUP BY cell;

-- @study_cells_with_metrics runs=study
SELECT count(DISTINCT cell) AS cells FROM metrics;

-- @study_seed_spread ordered runs=study
SELECT r.seed, avg(m.value) AS v FROM metrics m JOIN runs r ON m.cell = r.cell WHERE m.metric = 'mean' GROUP BY r.seed ORDER BY r.seed;

-- @study_real_rows_by_n runs=study
SELECT r."generate.n" AS n, s.origin, count(*) AS rows FROM samples s JOIN runs r ON s.cell = r.cell GROUP BY r."generate.n", s.origin;
