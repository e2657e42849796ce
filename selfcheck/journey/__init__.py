"""The beneficiary's journey: questionnaire pages, check page, summary."""
