-- Sample-ratio mismatch per experiment: Pearson chi-square of the users per variant (every
-- planned arm of experiment_arms, 0 users where none was exposed) against the planned
-- allocation shares, with k - 1 degrees of freedom. A split that differs from the plan this
-- much (p < var experiment_srm_alpha) means the assignment itself is broken.
with

arms as (
    select * from {{ ref('experiment_arms') }}
),

user_metrics as (
    select * from {{ ref('experiment_user_metrics') }}
),

exposed_users as (
    select distinct
        experiment_id,
        user_id,
        variant
    from user_metrics
),

users_per_variant as (
    select
        experiment_id,
        variant,
        count(*) as variant_users
    from exposed_users
    group by experiment_id, variant
),

windows as (
    select
        experiment_id,
        min(case when is_window_complete then 1 else 0 end) = 1 as is_window_complete
    from user_metrics
    group by experiment_id
),

observed as (
    select
        arms.experiment_id,
        arms.variant,
        arms.allocation_share,
        coalesce(users_per_variant.variant_users, 0) as variant_users,
        sum(coalesce(users_per_variant.variant_users, 0))
            over (partition by arms.experiment_id) as experiment_users,
        sum(arms.allocation_share) over (partition by arms.experiment_id) as share_total,
        count(*) over (partition by arms.experiment_id) as planned_variants
    from arms
    left join users_per_variant
        on
            arms.experiment_id = users_per_variant.experiment_id
            and arms.variant = users_per_variant.variant
),

statistics as (
    select
        experiment_id,
        max(planned_variants) as planned_variants,
        max(experiment_users) as experiment_users,
        case
            when max(experiment_users) > 0 and max(planned_variants) > 1
                then sum(
                    power(variant_users - allocation_share / share_total * experiment_users, 2)
                    / (allocation_share / share_total * experiment_users)
                )
        end as srm_chi_square
    from observed
    group by experiment_id
),

final as (
    select
        statistics.experiment_id,
        statistics.planned_variants,
        statistics.experiment_users,
        statistics.srm_chi_square,
        {{ chi_square_upper_tail(
            'statistics.srm_chi_square', 'statistics.planned_variants - 1',
            var('experiment_max_variants') - 1,
        ) }} as srm_p_value,
        coalesce(windows.is_window_complete, false) as is_window_complete
    from statistics
    left join windows
        on statistics.experiment_id = windows.experiment_id
)

select * from final
