x = true; y = "\q"; [''] = {{{
