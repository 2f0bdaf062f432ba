% # The outcome of the last save (?saved=) and a change still waiting for the line: shared by the settings pages.
% saved_text = {'now': _('Saved. The recorder restarts now to apply it: these pages answer again in a few seconds.'), 'after_call': _('Saved. It will apply when the call in progress ends.'), 'at_restart': _('Saved. It applies at the next start of the callrec service.'), 'unchanged': _('Nothing to save: the settings were already so.')}
% if saved in saved_text:
<p class="flash" role="status">{{saved_text[saved]}}</p>
% elif pending:
<p class="warning" role="status">{{_('A configuration change will apply when the call ends.')}}</p>
% end
