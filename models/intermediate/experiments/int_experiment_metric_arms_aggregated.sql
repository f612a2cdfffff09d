-- Per-arm moments of every experiment metric: users, means, sample variances of post_value and
-- pre_value and their sample covariance. experiment_results derives every statistic from these
-- (pooled CUPED theta included), so the per-user rows are read once.
with

user_metrics as (
    select * from {{ ref('experiment_user_metrics') }}
),

final as (
    select
        experiment_id,
        variant,
        metric_code,
        count(*) as arm_users,
        avg(post_value) as post_mean,
        var_samp(post_value) as post_variance,
        avg(pre_value) as pre_mean,
        var_samp(pre_value) as pre_variance,
        covar_samp(post_value, pre_value) as post_pre_covariance
    from user_metrics
    group by experiment_id, variant, metric_code
)

select * from final
