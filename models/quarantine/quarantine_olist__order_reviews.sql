{{ config(alias='order_reviews') }}

{{ quarantined_rows(ref('base_olist__order_reviews')) }}
