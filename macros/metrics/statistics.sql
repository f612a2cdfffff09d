{#-
    Distribution functions for the experiment statistics (marts/experiments/experiment_results),
    as plain SQL arithmetic (exp, ln, sqrt, power, abs) so they run on DuckDB and Spark alike;
    neither engine has a normal CDF or quantile of its own. userops/experiments.py computes the
    same statistics with scipy and is the reference the tests compare with.
-#}

{#- erfc(x) for x >= 0: Numerical Recipes' erfcc (Chebyshev fit), fractional error below
    1.2e-7 everywhere. -#}
{% macro erfc_nonnegative(x) -%}
    {%- set t = '(1.0 / (1.0 + 0.5 * (' ~ x ~ ')))' -%}
    ({{ t }} * exp(
        -(({{ x }}) * ({{ x }})) - 1.26551223 + {{ t }} * (1.00002368 + {{ t }} * (0.37409196
        + {{ t }} * (0.09678418 + {{ t }} * (-0.18628806 + {{ t }} * (0.27886807
        + {{ t }} * (-1.13520398 + {{ t }} * (1.48851587 + {{ t }} * (-0.82215223
        + {{ t }} * 0.17087277))))))))
    ))
{%- endmacro %}

{#- Two-sided p-value of a standard normal statistic z: P(|Z| >= |z|) = erfc(|z| / sqrt 2),
    capped at 1 (the fit's error would put z = 0 at 1 + 3e-8); null for a null z (least()
    skips nulls). -#}
{% macro normal_two_sided_p(z) -%}
    case
        when ({{ z }}) is not null
            then least(1.0, {{ erfc_nonnegative('abs(' ~ z ~ ') / sqrt(2.0)') }})
    end
{%- endmacro %}

{#- Standard normal quantile of a constant probability p in (0, 1): Acklam's rational
    approximation, relative error below 1.15e-9 (z of 0.975 is 1.959963985 to 9 places). -#}
{% macro normal_quantile(p) -%}
    {%- set a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690,
                 -30.66479806614716, 2.506628277459239] -%}
    {%- set b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
                 -13.28068155288572] -%}
    {%- set c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838,
                 -2.549732539343734, 4.374664141464968, 2.938163982698783] -%}
    {%- set d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996,
                 3.754408661907416] -%}
    {%- set p = p | float -%}
    {%- if p <= 0 or p >= 1 -%}
        {{ exceptions.raise_compiler_error('normal_quantile: p must lie in (0, 1), got ' ~ p) }}
    {%- endif -%}
    {%- if 0.02425 <= p <= 0.97575 -%}
        {#- doubles: DuckDB multiplies decimal literals exactly and runs out of scale -#}
        {%- set q = '(cast(' ~ p ~ ' as double) - 0.5)' -%}
        {%- set r = '(' ~ q ~ ' * ' ~ q ~ ')' -%}
        ((((((({{ a[0] }} * {{ r }} + {{ a[1] }}) * {{ r }} + {{ a[2] }}) * {{ r }} + {{ a[3] }}) * {{ r }}
            + {{ a[4] }}) * {{ r }} + {{ a[5] }}) * {{ q }})
        / ((((({{ b[0] }} * {{ r }} + {{ b[1] }}) * {{ r }} + {{ b[2] }}) * {{ r }} + {{ b[3] }}) * {{ r }}
            + {{ b[4] }}) * {{ r }} + 1))
    {%- else -%}
        {%- set sign = '1' if p < 0.5 else '-1' -%}
        {%- set q = 'sqrt(-2 * ln(cast(' ~ (p if p < 0.5 else 1 - p) ~ ' as double)))' -%}
        ({{ sign }} * ((((({{ c[0] }} * {{ q }} + {{ c[1] }}) * {{ q }} + {{ c[2] }}) * {{ q }} + {{ c[3] }})
            * {{ q }} + {{ c[4] }}) * {{ q }} + {{ c[5] }})
        / (((({{ d[0] }} * {{ q }} + {{ d[1] }}) * {{ q }} + {{ d[2] }}) * {{ q }} + {{ d[3] }}) * {{ q }} + 1))
    {%- endif -%}
{%- endmacro %}

{#- Upper tail P(X >= x) of a chi-square with df degrees of freedom, df an integer expression
    between 1 and max_df, in closed form (no series to truncate):
    even df = 2m: exp(-x/2) * sum_{i<m} (x/2)^i / i!;
    odd df = 2m+1: erfc(sqrt(x/2)) + sqrt(2/pi) exp(-x/2) * sum_{i=1..m} x^(i-1/2) / (2i-1)!!.
    The sums are unrolled up to max_df (a constant); null for df outside 1..max_df. -#}
{% macro chi_square_upper_tail(x, df, max_df) -%}
    case when ({{ x }}) is null then null else least(1.0, case
    {%- for k in range(1, max_df + 1) %}
        when ({{ df }}) = {{ k }} then
        {%- if k % 2 == 0 %}
            {%- set terms = [] -%}
            {%- set factorial = namespace(value=1) -%}
            {%- for i in range(k // 2) -%}
                {%- if i > 0 %}{% set factorial.value = factorial.value * i %}{% endif -%}
                {%- do terms.append('power((' ~ x ~ ') / 2.0, ' ~ i ~ ') / ' ~ factorial.value) -%}
            {%- endfor %}
            exp(-({{ x }}) / 2.0) * ({{ terms | join(' + ') }})
        {%- else %}
            {%- set terms = ['0'] -%}
            {%- set double_factorial = namespace(value=1) -%}
            {%- for i in range(1, (k - 1) // 2 + 1) -%}
                {%- set double_factorial.value = double_factorial.value * (2 * i - 1) -%}
                {%- do terms.append('power(' ~ x ~ ', ' ~ (i - 0.5) ~ ') / ' ~ double_factorial.value) -%}
            {%- endfor %}
            {{ erfc_nonnegative('sqrt((' ~ x ~ ') / 2.0)') }}
            + sqrt(2.0 / pi()) * exp(-({{ x }}) / 2.0) * ({{ terms | join(' + ') }})
        {%- endif %}
    {%- endfor %}
    end) end
{%- endmacro %}

{#- Half-width of the always-valid interval (confidence sequence; Waudby-Smith et al. 2023,
    eq. 9, two-sided normal mixture, as GrowthBook's sequential testing) of an estimate with
    standard error `standard_error` from n observations; alpha and the tuning N are constants:
    rho = sqrt((-2 ln alpha + ln(-2 ln alpha + 1)) / N), s2 = SE^2 n,
    half-width = sqrt(s2) sqrt(2 (n rho^2 + 1) ln(sqrt(n rho^2 + 1) / alpha) / (n rho)^2).
    Null unless SE > 0. -#}
{% macro sequential_halfwidth(standard_error, n, alpha, tuning) -%}
    {%- set rho_squared = '((-2 * ln(' ~ alpha ~ ') + ln(-2 * ln(' ~ alpha ~ ') + 1)) / ' ~ tuning ~ ')' -%}
    {%- set spread = '((' ~ n ~ ') * ' ~ rho_squared ~ ' + 1)' -%}
    case
        when ({{ standard_error }}) > 0 and ({{ n }}) >= 1
            then sqrt(power({{ standard_error }}, 2) * ({{ n }})) * sqrt(
                2 * {{ spread }} * ln(sqrt({{ spread }}) / {{ alpha }})
                / (power({{ n }}, 2) * {{ rho_squared }})
            )
    end
{%- endmacro %}
