"""Response SLAs: business calendars, the policy of a lead, and the nudges that enforce it."""
