{% materialization test, default %}
    {#- Elementary's test materialization (it records each test's result), chosen here explicitly: dbt runs a
        package's override of a built-in materialization only when the root project asks for it. -#}
    {{ return(elementary.materialization_test_default()) }}
{% endmaterialization %}
