{{ config(alias='order_payments') }}

{{ quarantined_rows(ref('base_olist__order_payments')) }}
