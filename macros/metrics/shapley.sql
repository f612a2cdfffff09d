{#-
    Shapley split of the change of a product of factors, x1 * x2 * ... * xn, from the
    comparison values (old) to the current ones (new): effect_i is the average, over all n!
    orders in which the factors can switch from old to new, of the change in the product when
    factor i switches. The effects add up exactly to new product - old product, whatever the
    signs or zeros (a log split cannot take a zero).
    Each effect is written as (sum over subsets S without i of |S|! (n-|S|-1)! x (v(S+i) -
    v(S))) / n!, integer weights and one division, so inputs that are exact in binary give the
    exact effect whenever it is representable.
    `factors`: list of (new_expression, old_expression); returns one SQL expression per factor.
-#}
{% macro shapley_effects(factors) %}
    {%- set n = factors | length -%}
    {%- set factorial = [1] -%}
    {%- for k in range(1, n + 1) -%}
        {%- do factorial.append(factorial[k - 1] * k) -%}
    {%- endfor -%}
    {%- set effects = [] -%}
    {%- for i in range(n) -%}
        {%- set terms = [] -%}
        {%- for mask in range(2 ** n) if not (mask // (2 ** i)) % 2 -%}
            {%- set size = namespace(value=0) -%}
            {%- set with_i = [] -%}
            {%- set without_i = [] -%}
            {%- for j in range(n) -%}
                {%- set is_new = (mask // (2 ** j)) % 2 == 1 -%}
                {%- if is_new -%}
                    {%- set size.value = size.value + 1 -%}
                {%- endif -%}
                {%- do with_i.append('(' ~ (factors[j][0] if is_new or j == i else factors[j][1]) ~ ')') -%}
                {%- do without_i.append('(' ~ (factors[j][0] if is_new else factors[j][1]) ~ ')') -%}
            {%- endfor -%}
            {%- set weight = factorial[size.value] * factorial[n - size.value - 1] -%}
            {%- do terms.append(weight ~ ' * (' ~ (with_i | join(' * ')) ~ ' - ' ~ (without_i | join(' * ')) ~ ')') -%}
        {%- endfor -%}
        {%- do effects.append('((' ~ (terms | join(' + ')) ~ ') / ' ~ factorial[n] ~ '.0)') -%}
    {%- endfor -%}
    {{ return(effects) }}
{% endmacro %}
