Feature: The console refuses bad input and changes nothing
  Every bad request gets a 4xx with a JSON error; nothing is provisioned and no lifecycle
  event reaches the HATCH log.

  Background:
    Given a rocky stack

  Scenario Outline: a bad provision request: <case>
    When I POST '<body>' to "/api/hearth/workspaces"
    Then the console answers <status> with code "<code>"
    And hearth knows no workspace "<slug>"
    And the HATCH log has 0 records

    Examples:
      | case            | body                                            | status | code         | slug      |
      | malformed JSON  | {"slug":"ws1","tier":"solo"                     | 400    | bad_json     | ws1       |
      | unknown field   | {"slug":"ws2","tier":"solo","billing":"polar"}  | 400    | bad_request  | ws2       |
      | missing field   | {"slug":"ws3"}                                  | 400    | bad_request  | ws3       |
      | uppercase slug  | {"slug":"Bad-Slug","tier":"solo"}               | 400    | bad_slug     | bad-slug  |
      | leading hyphen  | {"slug":"-ws4","tier":"solo"}                   | 400    | bad_slug     | ws4       |
      | unknown tier    | {"slug":"ws5","tier":"enterprise"}              | 400    | unknown_tier | ws5       |

  Scenario: an oversized body is refused before it is parsed
    When I POST a body of 80 KiB to "/api/hearth/workspaces"
    Then the console answers 413 with code "body_too_large"
    And hearth knows no workspace "big"
    And the HATCH log has 0 records

  Scenario Outline: LocalAuth refuses <who>
    When I POST '{"slug":"ws6","tier":"solo"}' to "/api/hearth/workspaces" as <who>
    Then the console answers <status> with code "<code>"
    And hearth knows no workspace "ws6"
    And the HATCH log has 0 records

    Examples:
      | who      | status | code         |
      | nobody   | 401    | unauthorized |
      | stranger | 401    | unauthorized |
      | viewer   | 403    | forbidden    |

  Scenario: a viewer may read but not provision
    When I GET "/api/hearth/workspaces/none" as viewer
    Then the console answers 404 with code "not_found"

  Scenario: a slug in use is refused with 409 and provisions nothing more
    When I provision workspace "dup" on tier "solo"
    Then workspace "dup" is ready
    When I POST '{"slug":"dup","tier":"solo"}' to "/api/hearth/workspaces"
    Then the console answers 409 with code "slug_in_use"
    And the HATCH chain is exactly "hearth.provisioning_started → hearth.provisioned"
    When I tear down workspace "dup"
    Then the console answers 200

  Scenario: a run for a workspace that does not exist is refused
    When I POST '{"workspace":"ghost","prompts":["p"]}' to "/api/ralph/runs"
    Then the console answers 404 with code "not_found"
    And the HATCH log has 0 records

  Scenario: a run with an unknown field is refused
    When I POST '{"workspace":"ghost","prompts":["p"],"model":"gpt"}' to "/api/ralph/runs"
    Then the console answers 400 with code "bad_request"
    And the HATCH log has 0 records
