-- Per-arm moments of every experiment metric: users, means, sample variances of post_value and
-- pre_value and their sample covariance. experiment_results derives every statistic from these
-- (pooled CUPED theta included), so the per-user rows are read once.
-- The sums are exact decimals (values carry at most 6 decimals: money has 2, the rest are
-- counts and 0/1 flags), so the moments do not depend on the order a parallel aggregate adds
-- the rows in: a day-partitioned run gives the same results as a full build, to the last bit.
-- Variance = (n sum x^2 - (sum x)^2) / (n (n - 1)) with an exact numerator.
with

user_metrics as (
    select
        experiment_id,
        variant,
        metric_code,
        cast(post_value as decimal(38, 6)) as post_value,
        cast(pre_value as decimal(38, 6)) as pre_value
    from {{ ref('experiment_user_metrics') }}
),

sums as (
    select
        experiment_id,
        variant,
        metric_code,
        count(*) as arm_users,
        sum(post_value) as post_sum,
        sum(pre_value) as pre_sum,
        sum(post_value * post_value) as post_square_sum,
        sum(pre_value * pre_value) as pre_square_sum,
        sum(post_value * pre_value) as post_pre_product_sum
    from user_metrics
    group by experiment_id, variant, metric_code
),

final as (
    select
        experiment_id,
        variant,
        metric_code,
        arm_users,
        cast(post_sum as double) / arm_users as post_mean,
        case
            when arm_users > 1
                then cast(arm_users * post_square_sum - post_sum * post_sum as double)
                / (arm_users * (arm_users - 1))
        end as post_variance,
        cast(pre_sum as double) / arm_users as pre_mean,
        case
            when arm_users > 1
                then cast(arm_users * pre_square_sum - pre_sum * pre_sum as double)
                / (arm_users * (arm_users - 1))
        end as pre_variance,
        case
            when arm_users > 1
                then cast(arm_users * post_pre_product_sum - post_sum * pre_sum as double)
                / (arm_users * (arm_users - 1))
        end as post_pre_covariance
    from sums
)

select * from final
