-- Every A/B test and audience holdout of experiment_arms analysed by one set of statistics:
-- each treatment variant against the experiment's control, per metric of
-- experiment_user_metrics with at least two users in both arms. Formulas: the model YAML and
-- docs/operations_loop.md; userops/experiments.py is the scipy reference the tests compare with.
{%- set alpha = var('experiment_alpha') %}
{%- set z = normal_quantile(1 - alpha / 2) %}
with

arms as (
    select * from {{ ref('experiment_arms') }}
),

moments as (
    select * from {{ ref('int_experiment_metric_arms_aggregated') }}
),

sample_ratios as (
    select * from {{ ref('int_experiment_sample_ratios_checked') }}
),

pairs as (
    select
        treatment_arms.experiment_id,
        treatment_arms.experiment_kind,
        treatment_arms.variant,
        control_arms.variant as control_variant,
        treatment.metric_code,
        control.arm_users as control_users,
        treatment.arm_users as treatment_users,
        control.post_mean as control_mean,
        treatment.post_mean as treatment_mean,
        treatment.post_variance / treatment.arm_users as treatment_mean_variance,
        control.post_variance / control.arm_users as control_mean_variance,
        treatment.pre_mean as treatment_pre_mean,
        control.pre_mean as control_pre_mean,
        treatment.pre_variance as treatment_pre_variance,
        control.pre_variance as control_pre_variance,
        treatment.post_variance as treatment_post_variance,
        control.post_variance as control_post_variance,
        treatment.post_pre_covariance as treatment_covariance,
        control.post_pre_covariance as control_covariance,
        (treatment.arm_users * treatment.pre_mean + control.arm_users * control.pre_mean)
        / (treatment.arm_users + control.arm_users) as pooled_pre_mean,
        (treatment.arm_users * treatment.post_mean + control.arm_users * control.post_mean)
        / (treatment.arm_users + control.arm_users) as pooled_post_mean
    from arms as treatment_arms
    inner join arms as control_arms
        on
            treatment_arms.experiment_id = control_arms.experiment_id
            and control_arms.is_control
    inner join moments as treatment
        on
            treatment_arms.experiment_id = treatment.experiment_id
            and treatment_arms.variant = treatment.variant
    inner join moments as control
        on
            control_arms.experiment_id = control.experiment_id
            and control_arms.variant = control.variant
            and treatment.metric_code = control.metric_code
    where
        not treatment_arms.is_control
        and treatment.arm_users >= 2
        and control.arm_users >= 2
),

raw_compared as (
    select
        *,
        treatment_mean - control_mean as difference,
        sqrt(treatment_mean_variance + control_mean_variance) as standard_error,
        -- The covariate's variance and covariance with the outcome over both arms, from each
        -- arm's moments (within-arm sums plus the between-arm part).
        case
            when
                treatment_pre_variance = 0 and control_pre_variance = 0
                and treatment_pre_mean = control_pre_mean
                then 0.0
            else (
                (treatment_users - 1) * treatment_covariance
                + (control_users - 1) * control_covariance
                + treatment_users * (treatment_post_mean_gap) * (treatment_pre_mean - pooled_pre_mean)
                + control_users * (control_post_mean_gap) * (control_pre_mean - pooled_pre_mean)
            ) / (
                (treatment_users - 1) * treatment_pre_variance
                + (control_users - 1) * control_pre_variance
                + treatment_users * power(treatment_pre_mean - pooled_pre_mean, 2)
                + control_users * power(control_pre_mean - pooled_pre_mean, 2)
            )
        end as cuped_theta
    from (
        select
            *,
            treatment_mean - pooled_post_mean as treatment_post_mean_gap,
            control_mean - pooled_post_mean as control_post_mean_gap
        from pairs
    ) as gaps
),

adjusted as (
    -- CUPED: each user's post - theta (pre - pooled mean of pre); the adjusted arm means and
    -- within-arm variances follow from the moments.
    select
        *,
        treatment_mean - cuped_theta * (treatment_pre_mean - pooled_pre_mean)
            as treatment_adjusted_mean,
        control_mean - cuped_theta * (control_pre_mean - pooled_pre_mean)
            as control_adjusted_mean,
        greatest(
            treatment_post_variance + cuped_theta * cuped_theta * treatment_pre_variance
            - 2 * cuped_theta * treatment_covariance,
            0
        ) / treatment_users as treatment_adjusted_mean_variance,
        greatest(
            control_post_variance + cuped_theta * cuped_theta * control_pre_variance
            - 2 * cuped_theta * control_covariance,
            0
        ) / control_users as control_adjusted_mean_variance
    from raw_compared
),

estimated as (
    select
        *,
        treatment_adjusted_mean - control_adjusted_mean as cuped_difference,
        sqrt(treatment_adjusted_mean_variance + control_adjusted_mean_variance)
            as cuped_standard_error
    from adjusted
),

intervals as (
    select
        experiment_id,
        experiment_kind,
        variant,
        control_variant,
        metric_code,
        control_users,
        treatment_users,
        control_mean,
        treatment_mean,
        difference,
        difference - {{ z }} * standard_error as difference_ci_lower,
        difference + {{ z }} * standard_error as difference_ci_upper,
        case
            when standard_error > 0
                then {{ normal_two_sided_p('difference / standard_error') }}
        end as p_value,
        case when control_mean != 0 then difference / control_mean end as relative_lift,
        case
            when control_mean != 0
                then difference / control_mean - {{ z }} * sqrt(
                    treatment_mean_variance / power(control_mean, 2)
                    + power(treatment_mean, 2) * control_mean_variance / power(control_mean, 4)
                )
        end as relative_lift_ci_lower,
        case
            when control_mean != 0
                then difference / control_mean + {{ z }} * sqrt(
                    treatment_mean_variance / power(control_mean, 2)
                    + power(treatment_mean, 2) * control_mean_variance / power(control_mean, 4)
                )
        end as relative_lift_ci_upper,
        cuped_theta,
        cuped_difference,
        cuped_difference - {{ z }} * cuped_standard_error as cuped_ci_lower,
        cuped_difference + {{ z }} * cuped_standard_error as cuped_ci_upper,
        case
            when cuped_standard_error > 0
                then {{ normal_two_sided_p('cuped_difference / cuped_standard_error') }}
        end as cuped_p_value,
        case
            when control_adjusted_mean != 0 then cuped_difference / control_adjusted_mean
        end as cuped_relative_lift,
        case
            when control_adjusted_mean != 0
                then cuped_difference / control_adjusted_mean - {{ z }} * sqrt(
                    treatment_adjusted_mean_variance / power(control_adjusted_mean, 2)
                    + power(treatment_adjusted_mean, 2) * control_adjusted_mean_variance
                    / power(control_adjusted_mean, 4)
                )
        end as cuped_relative_lift_ci_lower,
        case
            when control_adjusted_mean != 0
                then cuped_difference / control_adjusted_mean + {{ z }} * sqrt(
                    treatment_adjusted_mean_variance / power(control_adjusted_mean, 2)
                    + power(treatment_adjusted_mean, 2) * control_adjusted_mean_variance
                    / power(control_adjusted_mean, 4)
                )
        end as cuped_relative_lift_ci_upper,
        case
            when standard_error > 0
                then 1 - power(cuped_standard_error, 2) / power(standard_error, 2)
        end as variance_reduction,
        {{ sequential_halfwidth(
            'cuped_standard_error', 'treatment_users + control_users', alpha,
            var('experiment_sequential_tuning'),
        ) }} as sequential_halfwidth
    from estimated
),

holm_ranked as (
    -- Holm's step-down over the CUPED p-values of one (experiment, variant)'s metrics: the
    -- i-th smallest of m is multiplied by m - i + 1, capped at 1, and made monotone.
    select
        *,
        count(cuped_p_value) over (partition by experiment_id, variant) as tested_metrics,
        row_number() over (
            partition by experiment_id, variant
            order by case when cuped_p_value is null then 1 else 0 end, cuped_p_value, metric_code
        ) as p_value_rank
    from intervals
),

holm_adjusted as (
    select
        *,
        case
            when cuped_p_value is not null
                then max(least(1.0, (tested_metrics - p_value_rank + 1) * cuped_p_value)) over (
                    partition by experiment_id, variant
                    order by p_value_rank
                    rows between unbounded preceding and current row
                )
        end as holm_p_value
    from holm_ranked
),

final as (
    select
        holm_adjusted.experiment_id,
        holm_adjusted.experiment_kind,
        holm_adjusted.variant,
        holm_adjusted.control_variant,
        holm_adjusted.metric_code,
        holm_adjusted.control_users,
        holm_adjusted.treatment_users,
        holm_adjusted.control_mean,
        holm_adjusted.treatment_mean,
        holm_adjusted.difference,
        holm_adjusted.difference_ci_lower,
        holm_adjusted.difference_ci_upper,
        holm_adjusted.p_value,
        holm_adjusted.relative_lift,
        holm_adjusted.relative_lift_ci_lower,
        holm_adjusted.relative_lift_ci_upper,
        holm_adjusted.cuped_theta,
        holm_adjusted.cuped_difference,
        holm_adjusted.cuped_ci_lower,
        holm_adjusted.cuped_ci_upper,
        holm_adjusted.cuped_p_value,
        holm_adjusted.cuped_relative_lift,
        holm_adjusted.cuped_relative_lift_ci_lower,
        holm_adjusted.cuped_relative_lift_ci_upper,
        holm_adjusted.variance_reduction,
        holm_adjusted.holm_p_value,
        coalesce(holm_adjusted.holm_p_value < {{ alpha }}, false) as is_significant,
        holm_adjusted.cuped_difference - holm_adjusted.sequential_halfwidth as sequential_ci_lower,
        holm_adjusted.cuped_difference + holm_adjusted.sequential_halfwidth as sequential_ci_upper,
        sample_ratios.srm_chi_square,
        sample_ratios.srm_p_value,
        coalesce(sample_ratios.srm_p_value < {{ var('experiment_srm_alpha') }}, false) as has_srm,
        sample_ratios.is_window_complete
    from holm_adjusted
    inner join sample_ratios
        on holm_adjusted.experiment_id = sample_ratios.experiment_id
)

select * from final
