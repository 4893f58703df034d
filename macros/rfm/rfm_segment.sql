{% macro rfm_segment(recency_score, frequency_score, monetary_score) -%}
    {#- The customer segment from RFM scores (1 = worst, 5 = best), first matching rule wins. -#}
    case
        when {{ recency_score }} >= 4 and {{ frequency_score }} >= 4 and {{ monetary_score }} >= 4 then 'champions'
        when {{ frequency_score }} >= 3 and {{ recency_score }} >= 3 then 'loyal'
        when {{ frequency_score }} >= 3 then 'at_risk'
        when {{ recency_score }} >= 4 and {{ monetary_score }} >= 4 then 'promising_big_spenders'
        when {{ recency_score }} >= 4 then 'new'
        when {{ recency_score }} <= 2 then 'hibernating'
        else 'needs_attention'
    end
{%- endmacro %}
