% rebase('layout.tpl', title=_('Announcements'), section='settings')
% dir_names = {'in': _('Incoming calls'), 'out': _('Outgoing calls')}
% lang_names = {'fr': _('French'), 'en': _('English')}
<p><a href="/settings">{{_('Settings')}}</a></p>
<h1>{{_('Announcements')}}</h1>
<p>{{_('The consent announcement is played to the other party of every call before recording starts. Each direction and language has its versions; the active one is played. A new version is taken into use between two calls, never during one.')}}</p>
% for d in ('in', 'out'):
<p>{{dir_names[d]}}: {{_('played in this order:')}} {{', '.join(lang_names[l] for l in played[d])}}.</p>
% end
<p class="help"><a href="/settings/announcement-languages">{{_('Choose the languages announced on each call')}}</a></p>
% if problem:
<div class="errors" role="alert"><p>{{problem}}</p></div>
% end
% if errors.get('activate'):
<div class="errors" role="alert" id="activate-error"><p>{{errors['activate']}}</p></div>
% end

% for s in slots:
<section id="{{s['key']}}" aria-labelledby="{{s['key']}}-h">
  <h2 id="{{s['key']}}-h">{{dir_names[s['direction']]}} · {{lang_names[s['language']]}}</h2>
%   if not s['played']:
  <p class="help">{{_('Not played with the current configuration.')}}</p>
%   end
%   active_id = s['active']['version'] if s['active'] else None
%   if not s['versions']:
  <p>{{_('No version yet.')}}</p>
%   end
%   for v in s['versions']:
%     is_active = v['id'] == active_id
  <article class="prompt-version{{' active' if is_active else ''}}" aria-labelledby="v-{{v['id']}}">
    <h3 id="v-{{v['id']}}">{{_('Version {number}', number=v['number'])}}{{' — ' + _('active') if is_active else ''}}</h3>
    <dl class="meta">
      <dt>{{_('Label')}}</dt><dd>{{v['label']}}</dd>
      <dt>{{_('Duration')}}</dt><dd>{{duration(v['seconds'])}}</dd>
      <dt>{{_('Added')}}</dt><dd>{{local_time(v['uploaded_at'])}}, {{_('by the installer') if v['uploaded_by'] == 'installer' else _('by {name}', name=v['uploaded_by'])}}</dd>
%     if is_active:
      <dt>{{_('Active since')}}</dt><dd>{{local_time(s['active']['since'])}}, {{_('by the installer') if s['active']['by'] == 'installer' else _('by {name}', name=s['active']['by'])}}</dd>
%     end
      <dt>{{_('SHA-256')}}</dt><dd><code class="hash">{{v['sha256']}}</code></dd>
    </dl>
    <audio controls preload="metadata" src="/settings/announcements/audio/{{v['id']}}" aria-label="{{_('Listen to version {number}', number=v['number'])}}"></audio>
%     if not is_active:
    <form method="post" action="/settings/announcements/activate">
      <input type="hidden" name="csrf_token" value="{{csrf}}">
      <input type="hidden" name="version" value="{{v['id']}}">
      <input type="checkbox" id="confirm-{{v['id']}}" name="confirm" value="yes" required>
      <label for="confirm-{{v['id']}}">{{_('I have listened to it: play it on calls from now on')}}</label>
      <button type="submit">{{_('Make active')}}</button>
    </form>
%     end
  </article>
%   end
%   if s['history']:
  <details>
    <summary>{{_('Activation history')}}</summary>
    <ul>
%     for h in s['history']:
      <li>{{local_time(h['since'])}}: {{h['version']}}, {{_('by the installer') if h['by'] == 'installer' else _('by {name}', name=h['by'])}}</li>
%     end
    </ul>
  </details>
%   end
</section>
% end

<section id="upload" aria-labelledby="upload-h">
  <h2 id="upload-h">{{_('Add a version')}}</h2>
  <p>{{_('WAV, FLAC, Ogg (Vorbis or Opus) or MP3, up to {mb} MB, {min} to {max} seconds of speech. It is converted for the telephone line (mono, 8 kHz), its silences at the start and end are trimmed and its level is set to a fixed loudness. It is stored as a new version: listen to it, then make it active.', mb=max_mb, min='{:g}'.format(min_s), max='{:g}'.format(max_s))}}</p>
  <form method="post" action="/settings/announcements/upload" enctype="multipart/form-data">
    <input type="hidden" name="csrf_token" value="{{csrf}}">
%   for fname, legend, options in (('direction', _('Calls'), dir_names), ('language', _('Language'), lang_names)):
    <fieldset{{!' aria-describedby="%s-error"' % fname if errors.get(fname) else ''}}>
      <legend>{{legend}}</legend>
%     for value, text in options.items():
      <input type="radio" id="{{fname}}-{{value}}" name="{{fname}}" value="{{value}}" required{{!' checked' if chosen.get(fname) == value else ''}}>
      <label for="{{fname}}-{{value}}">{{text}}</label>
%     end
%     if errors.get(fname):
      <p class="errors field-error" id="{{fname}}-error">{{errors[fname]}}</p>
%     end
    </fieldset>
%   end
    <label for="audio">{{_('Audio file')}}</label>
    <input type="file" id="audio" name="audio" required accept=".wav,.flac,.ogg,.oga,.opus,.mp3,audio/*" aria-describedby="audio-help{{' audio-error' if errors.get('audio') else ''}}"{{!' aria-invalid="true"' if errors.get('audio') else ''}}>
    <p class="help" id="audio-help">{{_('The file name is kept only as a label.')}}</p>
%   if errors.get('audio'):
    <p class="errors field-error" id="audio-error" role="alert">{{errors['audio']}}</p>
%   end
    <button type="submit">{{_('Upload')}}</button>
  </form>
</section>
